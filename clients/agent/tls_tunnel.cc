#include "clients/agent/tls_tunnel.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/base/openssl_support.h"

namespace rdg::agent {
namespace {

using openssl::OpenSslError;

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

}  // namespace

absl::StatusOr<std::unique_ptr<TlsServerContext>> TlsServerContext::Create(
    const std::string& certificate, const std::string& private_key, const std::string& device_ca) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("TLS: ", OpenSslError()));
  auto context = std::unique_ptr<TlsServerContext>(new TlsServerContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("dicom.tls: cannot use the certificate ", certificate, ": ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, private_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("dicom.tls: cannot use the private key ",
                                                   private_key,
                                                   " with the certificate: ", OpenSslError()));
  }
  if (!device_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, device_ca.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("dicom.tls: cannot read the device CA ", device_ca, ": ", OpenSslError()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return context;
}

TlsServerContext::~TlsServerContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<std::unique_ptr<TlsTunnel>> TlsServerContext::Accept(int fd,
                                                                    absl::Time deadline) const {
  SetNonBlocking(fd);
  openssl::SslPtr ssl(SSL_new(ctx_));
  if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) {
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslError()));
  }
  for (;;) {
    const int r = SSL_accept(ssl.get());
    if (r == 1) break;
    const int e = SSL_get_error(ssl.get(), r);
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || left <= 0) {
      const std::string why =
          left <= 0 ? "no handshake within the association deadline" : OpenSslError();
      return absl::UnauthenticatedError(absl::StrCat("TLS handshake failed: ", why));
    }
    pollfd p{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 500))) < 0 && errno != EINTR) {
      return absl::UnavailableError("TLS handshake: the connection failed");
    }
  }
  std::string peer;
  if (openssl::X509Ptr cert(SSL_get1_peer_certificate(ssl.get())); cert != nullptr) {
    char name[256];
    X509_NAME_oneline(X509_get_subject_name(cert.get()), name, sizeof(name));
    peer = name;
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return absl::ResourceExhaustedError("TLS: no socket pair for the relay");
  }
  SetNonBlocking(pair[0]);
  return std::unique_ptr<TlsTunnel>(
      new TlsTunnel(ssl.release(), fd, pair[0], pair[1], std::move(peer)));
}

TlsTunnel::TlsTunnel(SSL* ssl, int tls_fd, int relay_fd, int plain_fd, std::string peer)
    : ssl_(ssl), tls_fd_(tls_fd), relay_fd_(relay_fd), plain_fd_(plain_fd), peer_(std::move(peer)) {
  if (pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) stop_pipe_[0] = stop_pipe_[1] = -1;
  relay_ = std::thread([this] { Relay(); });
}

TlsTunnel::~TlsTunnel() {
  if (stop_pipe_[1] >= 0) (void)!write(stop_pipe_[1], "x", 1);
  if (relay_.joinable()) relay_.join();
  SSL_free(ssl_);
  close(relay_fd_);
  for (int fd : stop_pipe_) {
    if (fd >= 0) close(fd);
  }
}

// Moves bytes both ways until both sides have ended: device → TLS → socketpair → DCMTK, and
// back. Each direction holds at most one read's worth of bytes; a full side stops the reads of
// the other (back-pressure), never buffers without bound.
void TlsTunnel::Relay() {
  // However the relay ends, DCMTK's side sees the end at once (not at its own timeout).
  struct EndPlainSide {
    int fd;
    ~EndPlainSide() { shutdown(fd, SHUT_RDWR); }
  } end_plain_side{relay_fd_};
  char buf[16 * 1024];
  std::string to_plain, to_tls;  // read from one side, not yet written to the other
  size_t plain_off = 0, tls_off = 0;
  // The device's first PDU (its A-ASSOCIATE-RQ, at most 64 KiB) is passed on only once it is
  // complete: DCMTK reads it holding a process-wide lock, so it must never wait for the network
  // (the plain listener gets the same from SO_RCVLOWAT, which a socketpair does not honour).
  std::string first_pdu;
  bool first_pdu_passed = false;
  bool tls_ended = false, plain_ended = false, plain_closed_for_writing = false;
  bool read_wants_write = false, write_wants_read = false;
  for (;;) {
    for (bool progress = true; progress;) {
      progress = false;
      if (!tls_ended && to_plain.empty() && first_pdu.size() <= 70 * 1024) {
        const int n = SSL_read(ssl_, buf, sizeof(buf));
        read_wants_write = false;
        if (n > 0 && !first_pdu_passed) {
          first_pdu.append(buf, static_cast<size_t>(n));
          progress = true;
          if (first_pdu.size() >= 6) {
            const auto* h = reinterpret_cast<const unsigned char*>(first_pdu.data());
            const uint64_t length =
                (uint64_t{h[2]} << 24) | (uint64_t{h[3]} << 16) | (uint64_t{h[4]} << 8) | h[5];
            if (length > 64 * 1024) return;  // no A-ASSOCIATE-RQ is that large: end it
            if (first_pdu.size() >= 6 + length) {
              to_plain = std::move(first_pdu);
              plain_off = 0;
              first_pdu_passed = true;
            }
          }
        } else if (n > 0) {
          to_plain.assign(buf, static_cast<size_t>(n));
          plain_off = 0;
          progress = true;
        } else if (const int e = SSL_get_error(ssl_, n); e == SSL_ERROR_WANT_WRITE) {
          read_wants_write = true;
        } else if (e != SSL_ERROR_WANT_READ) {
          tls_ended = true;  // close_notify, the connection gone, or a TLS error
        }
      }
      if (!to_plain.empty()) {
        const ssize_t n =
            send(relay_fd_, to_plain.data() + plain_off, to_plain.size() - plain_off, MSG_NOSIGNAL);
        if (n > 0) {
          plain_off += static_cast<size_t>(n);
          if (plain_off == to_plain.size()) to_plain.clear();
          progress = true;
        } else if (n < 0 && !WouldBlock()) {
          return;  // DCMTK's side is gone
        }
      }
      if (!plain_ended && to_tls.empty()) {
        const ssize_t n = recv(relay_fd_, buf, sizeof(buf), 0);
        if (n > 0) {
          to_tls.assign(buf, static_cast<size_t>(n));
          tls_off = 0;
          progress = true;
        } else if (n == 0 || !WouldBlock()) {
          plain_ended = true;
        }
      }
      if (!to_tls.empty()) {
        const int n =
            SSL_write(ssl_, to_tls.data() + tls_off, static_cast<int>(to_tls.size() - tls_off));
        write_wants_read = false;
        if (n > 0) {
          tls_off += static_cast<size_t>(n);
          if (tls_off == to_tls.size()) to_tls.clear();
          progress = true;
        } else if (const int e = SSL_get_error(ssl_, n); e == SSL_ERROR_WANT_READ) {
          write_wants_read = true;
        } else if (e != SSL_ERROR_WANT_WRITE) {
          return;  // the device's side is gone: DCMTK sees the socketpair end
        }
      }
    }
    if (tls_ended && to_plain.empty() && !plain_closed_for_writing) {
      shutdown(relay_fd_, SHUT_WR);  // the device is done: DCMTK reads the end
      plain_closed_for_writing = true;
    }
    if (plain_ended && to_tls.empty()) {
      SSL_shutdown(ssl_);  // DCMTK is done: close_notify (best effort), and the relay ends
      return;
    }
    pollfd p[3] = {{tls_fd_, 0, 0}, {relay_fd_, 0, 0}, {stop_pipe_[0], POLLIN, 0}};
    if ((!tls_ended && to_plain.empty()) || write_wants_read) p[0].events |= POLLIN;
    if (read_wants_write || !to_tls.empty()) p[0].events |= POLLOUT;
    if (!plain_ended && to_tls.empty()) p[1].events |= POLLIN;
    if (!to_plain.empty()) p[1].events |= POLLOUT;
    // A side with nothing to wait for is left out: poll reports a hang-up whatever the events.
    for (int i = 0; i < 2; ++i) {
      if (p[i].events == 0) p[i].fd = -1;
    }
    if (poll(p, stop_pipe_[0] >= 0 ? 3 : 2, -1) < 0 && errno != EINTR) return;
    if (p[2].revents != 0) return;  // the tunnel is being destroyed
  }
}

}  // namespace rdg::agent
