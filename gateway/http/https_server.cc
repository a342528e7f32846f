#include "gateway/http/https_server.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "storage/base/openssl_support.h"

namespace rdg::http {
namespace {

//! A port's connection queue. cpp-httplib serves a connection on one pool thread
//! until it is idle for the keep-alive timeout or a read stalls for the read timeout (2 s), so a
//! flood of idle connections queued first come, first served kept /healthz waiting for a minute
//! (2,000 idle connections, 64 threads). Here waiting connections are served newest first: the
//! accept loop never waits, and a probe that arrives after a flood gets the next free thread.
//! At most kMaxPendingConnections wait (each is a descriptor, which gRPC needs too); past that
//! the accept loop waits and the kernel's backlog holds the rest.
class NewestFirstPool final : public httplib::TaskQueue {
 public:
  NewestFirstPool(size_t threads, size_t max_pending) : max_pending_(max_pending) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~NewestFirstPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &NewestFirstPool::HasRoom));
      if (!stopping_) {
        pending_.push_back(std::move(fn));
        return;
      }
    }
    fn();  // after shutdown: served (and closed) here
  }

  void shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    for (auto& t : threads_) t.join();  // the workers serve what is pending first
  }

 private:
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || pending_.size() < max_pending_;
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !pending_.empty(); }
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &NewestFirstPool::HasWork));
        if (pending_.empty()) return;  // stopping, nothing left
        fn = std::move(pending_.back());
        pending_.pop_back();
      }
      fn();
    }
  }

  const size_t max_pending_;
  absl::Mutex mu_;
  std::vector<std::function<void()>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<httplib::Server>> TlsServer(const rdg::v1::TlsConfig& tls,
                                                           ClientCertificates clients,
                                                           absl::string_view what) {
  std::string error;
  auto server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, tls.cert_file().c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(&ctx, tls.key_file().c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(&ctx, tls.ca_file().c_str(), nullptr) != 1) {
      error = absl::StrCat("cannot load tls.cert_file, tls.key_file or tls.ca_file for ", what);
      return false;
    }
    SSL_CTX_set_verify(&ctx,
                       clients == ClientCertificates::kRequired
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_PEER,
                       nullptr);
    return true;
  });
  if (!server->is_valid()) {
    return absl::InvalidArgumentError(error.empty() ? absl::StrCat("cannot set up TLS for ", what)
                                                    : error);
  }
  return std::unique_ptr<httplib::Server>(std::move(server));
}

//! PEM of the verified peer certificate of a TLS connection, or "".
std::string PeerCertificatePem(const httplib::Request& req) {
  if (req.ssl == nullptr) return "";
  SSL* ssl = const_cast<SSL*>(req.ssl);
  if (SSL_get_verify_result(ssl) != X509_V_OK) return "";
  openssl::X509Ptr cert(SSL_get1_peer_certificate(ssl));
  if (cert == nullptr) return "";
  std::string pem;
  if (openssl::BioPtr bio(BIO_new(BIO_s_mem())); bio != nullptr) {
    if (PEM_write_bio_X509(bio.get(), cert.get()) == 1) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio.get(), &data);
      pem.assign(data, static_cast<size_t>(n));
    }
  }
  return pem;
}

std::string PeerAddress(const httplib::Request& req) {
  const bool v6 = absl::StrContains(req.remote_addr, ':');
  return absl::StrCat(v6 ? "ipv6:[" : "ipv4:", req.remote_addr, v6 ? "]:" : ":", req.remote_port);
}

void ServeNewestFirst(httplib::Server& server, size_t threads, size_t max_pending) {
  server.new_task_queue = [threads, max_pending] {
    return new NewestFirstPool(threads, max_pending);
  };
}

absl::StatusOr<std::unique_ptr<Listening>> Listening::Start(std::unique_ptr<httplib::Server> server,
                                                            const std::string& listen, int backlog,
                                                            absl::string_view what) {
  std::pair<std::string, std::string> host_port = absl::StrSplit(listen, absl::MaxSplits(':', 1));
  if (host_port.first.size() > 2 && host_port.first.front() == '[') {  // [::1]:9464
    const auto close = listen.find("]:");
    host_port = {listen.substr(1, close - 1), listen.substr(close + 2)};
  }
  int port = 0;
  if (!absl::SimpleAtoi(host_port.second, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".listen must be HOST:PORT, not \"", listen, "\""));
  }
  std::unique_ptr<Listening> l(new Listening());
  l->server_ = std::move(server);
  // Debian's cpp-httplib is a compiled library: it listens with the backlog of 5 it was built
  // with, whatever CPPHTTPLIB_LISTEN_BACKLOG says here. With 5, a burst of connections overflows
  // the accept queue and a probe behind it waits for TCP retransmissions (seconds, doubling).
  // The listening socket is caught as it is created, and listen() called again with a larger
  // backlog (Linux changes the backlog of a listening socket in place).
  auto listening_fd = std::make_shared<int>(-1);  // the server keeps the callback
  l->server_->set_socket_options([listening_fd](int fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));  // not SO_REUSEPORT
    *listening_fd = fd;
  });
  l->port_ = port == 0 ? l->server_->bind_to_any_port(host_port.first)
                       : (l->server_->bind_to_port(host_port.first, port) ? port : -1);
  if (l->port_ <= 0 || *listening_fd < 0 || ::listen(*listening_fd, backlog) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, " for ", what,
                                               " (address in use or not local?)"));
  }
  httplib::Server* s = l->server_.get();
  auto returned = std::make_shared<std::atomic<bool>>(false);
  l->thread_ = std::thread([s, returned] {
    s->listen_after_bind();
    *returned = true;
  });
  // cpp-httplib 0.11's stop() does nothing until listen_after_bind has marked the server as
  // running, so a stop before that (SIGTERM right after start) would leave the thread in
  // accept() and the destructor waiting for it for ever. Return only once it runs (or ended).
  while (!s->is_running() && !*returned) std::this_thread::yield();
  return l;
}

Listening::~Listening() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace rdg::http
