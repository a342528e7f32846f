// TLS towards a system the gateway delivers to (the audit repository, a HIS over MLLP): TLS 1.2
// or later, the peer's certificate chained to a CA file given for that system (never defaulted to
// the platform CA, which also issues certificates to clinics and agents) and naming the system
// (DNS name, also sent as SNI, or IP address); the gateway presents its own certificate.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/common/tcp_connect.h"

namespace rdg {

struct TlsClientOptions {
  std::string ca_file;    //!< CA certificates that may have issued the peer's certificate (PEM)
  std::string cert_file;  //!< the gateway's certificate chain (PEM)
  std::string key_file;   //!< and its key
  std::string what;       //!< the configuration it comes from, for errors ("audit_export")
};

//! One TLS connection, closed (without close_notify) when destroyed.
class TlsSession {
 public:
  TlsSession(TlsSession&&) noexcept;
  TlsSession& operator=(TlsSession&&) noexcept;
  ~TlsSession();

  //! All of `data`; UNAVAILABLE when the connection fails or a write times out.
  absl::Status Write(absl::string_view data);
  //! Up to `size` bytes; 0 when the peer closed TLS (close_notify). UNAVAILABLE on a broken
  //! connection, DEADLINE_EXCEEDED when nothing came within the connection's timeout.
  absl::StatusOr<size_t> Read(char* buffer, size_t size);
  //! Sends close_notify.
  absl::Status Shutdown();

 private:
  friend class TlsClient;
  struct State;
  explicit TlsSession(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class TlsClient {
 public:
  //! Loads the certificates (an unreadable file is INVALID_ARGUMENT now, not at the first use).
  static absl::StatusOr<std::unique_ptr<TlsClient>> Create(const TlsClientOptions& options);
  ~TlsClient();

  //! Connects to host:port (ConnectTcp, each read and write bounded by `timeout`) and completes
  //! the handshake, the peer's certificate naming `server_name`. UNAVAILABLE, naming `where`
  //! and the reason, when either fails.
  absl::StatusOr<TlsSession> Connect(const std::string& host, const std::string& port,
                                     const std::string& server_name, absl::Duration timeout,
                                     absl::string_view where) const;

 private:
  struct Impl;
  explicit TlsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdg
