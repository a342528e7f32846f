#include "gateway/common/tcp_connect.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rdg {

TcpConnection& TcpConnection::operator=(TcpConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

TcpConnection::~TcpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<TcpConnection> ConnectTcp(const std::string& host, const std::string& port,
                                         absl::Duration timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat(host, ":", port, ": ", ::gai_strerror(rc)));
  }
  std::string last_error = "no address";
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    TcpConnection c(
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (c.fd() < 0) continue;
    int rc = ::connect(c.fd(), a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{c.fd(), POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
      int err = rc == 0 ? 0 : ETIMEDOUT;
      socklen_t len = sizeof(err);
      if (rc == 0) ::getsockopt(c.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        rc = -1;
      }
    }
    if (rc != 0) {
      last_error = std::strerror(errno);
      continue;
    }
    // Blocking from here on, each read and write bounded by the timeout.
    ::fcntl(c.fd(), F_SETFL, 0);
    timeval tv{static_cast<time_t>(timeout_ms / 1000),
               static_cast<suseconds_t>(timeout_ms % 1000) * 1000};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ::freeaddrinfo(found);
    return c;
  }
  ::freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat(host, ":", port, " unreachable: ", last_error));
}

}  // namespace rdg
