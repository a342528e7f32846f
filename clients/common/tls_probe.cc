#include "clients/common/tls_probe.h"

#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/common/connection.h"
#include "storage/base/openssl_support.h"

namespace rdg::clients {
namespace {

using SslCtxPtr = std::unique_ptr<SSL_CTX, openssl::Deleter<SSL_CTX, SSL_CTX_free>>;

//! A closed-on-scope socket.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

//! Blocks SIGPIPE on this thread while it lives (OpenSSL writes with write(2), and a gateway
//! that refused the handshake has closed its end), then drops one it caused and restores the
//! mask.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;
  ~NoSigpipe() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1 && sigismember(&old_, SIGPIPE) == 0) {
      const timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_;
  sigset_t old_;
};

//! "host:port", "[::1]:port" → host and port; false when there is no port.
bool SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty();
}

//! A TCP connection to `address` whose sends, receives and connect are bounded by `timeout`;
//! -1 when none of its addresses answers.
int ConnectTcp(const std::string& address, absl::Duration timeout) {
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) return -1;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  const timeval tv = absl::ToTimeval(timeout);
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // On Linux SO_SNDTIMEO also bounds connect(2).
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

constexpr char kRefused[] = "the gateway refused this certificate at the TLS handshake (";
constexpr char kWhy[] = "): it is revoked, expired or not issued by the platform CA";

//! What one probe saw.
struct Probe {
  enum Kind {
    kNothing,      //!< accepted, unreachable, timed out, or closed before the gateway's
                   //!< certificate: not a refusal of this client
    kRefused,      //!< a certificate alert, or the gateway's certificate not from --ca
    kSilentClose,  //!< the gateway presented its certificate and closed without a word
  } kind = kNothing;
  std::string why;
};

//! TLS alerts that refuse the client's certificate: bad_certificate, unsupported_certificate,
//! certificate_revoked, certificate_expired, certificate_unknown, unknown_ca, access_denied,
//! certificate_required.
bool IsCertificateAlert(int alert) {
  for (int a : {42, 43, 44, 45, 46, 48, 49, 116}) {
    if (alert == a) return true;
  }
  return false;
}

//! Classifies a failed SSL_connect/SSL_write/SSL_read (`result`) on `ssl`. `gateway_spoke`:
//! the gateway had presented its certificate (so a close is its answer, not a lost route).
//! Clears OpenSSL's error queue.
Probe Classify(SSL* ssl, int result, bool gateway_spoke) {
  const int error = SSL_get_error(ssl, result);
  Probe p;
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {  // SO_RCVTIMEO/SNDTIMEO
    ERR_clear_error();
    return p;
  }
  if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
    ERR_clear_error();
    p.kind = Probe::kRefused;
    p.why = absl::StrCat("the gateway's own certificate is not trusted (",
                         X509_verify_cert_error_string(v),
                         "): check --ca, it must be the platform CA certificate");
    return p;
  }
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    // Alerts received from the peer are reported as SSL_AD_REASON_OFFSET + the alert number.
    const int alert = ERR_GET_REASON(e) - SSL_AD_REASON_OFFSET;
    if (p.kind == Probe::kNothing && ERR_GET_LIB(e) == ERR_LIB_SSL && IsCertificateAlert(alert)) {
      const char* text = ERR_reason_error_string(e);
      p.kind = Probe::kRefused;
      p.why = absl::StrCat(kRefused, text ? text : "a TLS alert", kWhy);
    }
  }
  if (p.kind == Probe::kNothing && gateway_spoke) {
    p.kind = Probe::kSilentClose;
    p.why = absl::StrCat(kRefused, "it closed the connection without answering", kWhy);
  }
  return p;
}

Probe ProbeOnce(SSL_CTX* ctx, const std::string& gateway, absl::Duration timeout) {
  Socket socket(ConnectTcp(gateway, timeout));
  if (socket.fd() < 0) return {};
  openssl::SslPtr ssl(SSL_new(ctx));
  static constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
  if (ssl == nullptr || SSL_set_fd(ssl.get(), socket.fd()) != 1 ||
      SSL_set_alpn_protos(ssl.get(), kAlpnH2, sizeof(kAlpnH2)) != 0) {
    ERR_clear_error();
    return {};
  }
  ERR_clear_error();
  const NoSigpipe no_sigpipe;
  if (const int r = SSL_connect(ssl.get()); r != 1) {  // TLS 1.2 refuses here
    // Only a gateway that got as far as presenting its certificate refused this client; a
    // connection closed before that (a load balancer without a gateway behind it) did not.
    const openssl::X509Ptr server(SSL_get1_peer_certificate(ssl.get()));
    return Classify(ssl.get(), r, server != nullptr);
  }
  // TLS 1.3: the gateway's verdict on the certificate comes with its first answer. Send what a
  // gRPC client sends first (the HTTP/2 preface and an empty SETTINGS frame) and read.
  static constexpr char kPreface[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
  if (const int w = SSL_write(ssl.get(), kPreface, sizeof(kPreface) - 1); w <= 0) {
    return Classify(ssl.get(), w, /*gateway_spoke=*/true);
  }
  // A gateway that accepted the certificate answers with its own SETTINGS frame at once.
  char answer[64];
  const int n = SSL_read(ssl.get(), answer, sizeof(answer));
  if (n > 0) return {};
  return Classify(ssl.get(), n, /*gateway_spoke=*/true);
}

}  // namespace

std::optional<std::string> ExplainRefusedHandshake(const ConnectionOptions& conn,
                                                   absl::Duration timeout) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) return std::nullopt;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), conn.ca.c_str(), nullptr) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx.get(), conn.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), conn.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    ERR_clear_error();
    return std::nullopt;  // Connect() has already said what is wrong with the files
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  const Probe first = ProbeOnce(ctx.get(), conn.gateway, timeout);
  if (first.kind == Probe::kNothing) return std::nullopt;
  if (first.kind == Probe::kRefused) return first.why;
  // A silent close may also be a gateway that died just then: only the same answer again, a
  // moment later, is taken as a refusal.
  absl::SleepFor(absl::Milliseconds(500));
  const Probe second = ProbeOnce(ctx.get(), conn.gateway, timeout);
  if (second.kind == Probe::kNothing) return std::nullopt;
  return second.why;
}

}  // namespace rdg::clients
