// DICOM over TLS for the edge agent's DICOM listener (PS3.15 Annex B.1, the "secure transport
// connection profile"): OpenSSL does the handshake on the accepted socket in the connection's own
// thread, under no lock and within the association deadline, and then relays between the TLS
// connection and one end of a socketpair whose other end DCMTK serves as a plain connection. So
// DICOM over TLS gets exactly the same handling as plain DICOM (the A-ASSOCIATE-RQ wait, the
// caps, the checks) and DCMTK's process-wide socket handle is never held across a handshake.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rdg::agent {

class TlsTunnel;

class TlsServerContext {
 public:
  //! The agent's certificate and key (PEM) and, when `device_ca` is not empty, the CA
  //! certificates (PEM) that must have signed a device's certificate (devices are then required
  //! to present one; otherwise they are not asked). TLS 1.2 or later.
  static absl::StatusOr<std::unique_ptr<TlsServerContext>> Create(const std::string& certificate,
                                                                  const std::string& private_key,
                                                                  const std::string& device_ca);
  ~TlsServerContext();

  //! Handshakes on the accepted socket `fd` (made non-blocking) until `deadline`; on success
  //! the tunnel relays in a thread of its own. Owns nothing of `fd`: the caller closes it after
  //! the tunnel is gone.
  absl::StatusOr<std::unique_ptr<TlsTunnel>> Accept(int fd, absl::Time deadline) const;

 private:
  explicit TlsServerContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsTunnel {
 public:
  ~TlsTunnel();  //!< ends the relay (as plain_fd() closing would) and waits for it
  //! The plaintext side, for DCMTK; the caller closes it when the association is over.
  int plain_fd() const { return plain_fd_; }
  //! The device certificate's subject, or "" when none was asked for.
  const std::string& peer() const { return peer_; }

 private:
  friend class TlsServerContext;
  TlsTunnel(SSL* ssl, int tls_fd, int relay_fd, int plain_fd, std::string peer);
  void Relay();

  SSL* ssl_;
  const int tls_fd_;
  const int relay_fd_;  //!< our end of the socketpair
  const int plain_fd_;  //!< DCMTK's end
  const std::string peer_;
  int stop_pipe_[2] = {-1, -1};
  std::thread relay_;
};

}  // namespace rdg::agent
