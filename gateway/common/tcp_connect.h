// A TCP connection to HOST:PORT within a timeout, for the gateway's own outgoing connections
// (the audit repository, a HIS over MLLP): every address of the host tried in turn, the socket
// blocking once connected, each read and write bounded by the same timeout (SO_RCVTIMEO,
// SO_SNDTIMEO).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rdg {

//! A connected socket, closed when destroyed.
class TcpConnection {
 public:
  TcpConnection() = default;
  explicit TcpConnection(int fd) : fd_(fd) {}
  TcpConnection(TcpConnection&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  TcpConnection& operator=(TcpConnection&& other) noexcept;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;
  ~TcpConnection();

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

//! UNAVAILABLE naming the host and why ("Connection refused", "Connection timed out", a name
//! that does not resolve) when no address of it takes the connection within `timeout`.
absl::StatusOr<TcpConnection> ConnectTcp(const std::string& host, const std::string& port,
                                         absl::Duration timeout);

}  // namespace rdg
