#include "gateway/outbound/mllp_sender.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace rdg::outbound {
namespace {

constexpr char kStartBlock = '\x0b';
constexpr char kEndBlock = '\x1c';
constexpr size_t kMaxAckBytes = 64 * 1024;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

//! Waits for `events` on `fd` until `deadline`: whether they came.
bool Await(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

//! A connected non-blocking socket to `address` ("host:port"), or why not.
int Connect(const std::string& address, absl::Time deadline, std::string* error) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    *error = "bad address " + address;
    return -1;
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), address.c_str() + colon + 1, &hints, &found); rc != 0) {
    *error = absl::StrCat("cannot resolve ", address, ": ", ::gai_strerror(rc));
    return -1;
  }
  std::string last = "no address";
  int result = -1;
  for (addrinfo* ai = found; ai != nullptr && result < 0; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (Await(fd, POLLOUT, deadline)) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      result = fd;
    } else {
      last = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (result < 0) *error = absl::StrCat("cannot connect to ", address, ": ", last);
  return result;
}

}  // namespace

SendOutcome ReadAck(absl::string_view ack, absl::string_view control_id) {
  if (!absl::StartsWith(ack, "MSH") || ack.size() < 8) {
    return SendOutcome::Retry("the answer is not an HL7 message");
  }
  const char sep = ack[3];
  for (absl::string_view segment : absl::StrSplit(ack, absl::ByAnyChar("\r\n"))) {
    if (!absl::StartsWith(segment, "MSA")) continue;
    std::vector<absl::string_view> f = absl::StrSplit(segment, sep);
    const absl::string_view code = f.size() > 1 ? f[1] : "";
    const absl::string_view answered = f.size() > 2 ? f[2] : "";
    const absl::string_view text = f.size() > 3 ? f[3] : "";
    if (answered != control_id) {
      return SendOutcome::Retry(
          absl::StrCat("the ACK answers message ", answered, ", not ", control_id));
    }
    const std::string detail = absl::StrCat("ACK ", code, text.empty() ? "" : " ", text);
    if (code == "AA" || code == "CA") return SendOutcome::Sent(detail);
    if (code == "AR" || code == "CR") return SendOutcome::Refused(detail);
    return SendOutcome::Retry(
        detail);  // AE, CE: an application error at the receiver, or an unknown code
  }
  return SendOutcome::Retry("the answer has no MSA segment");
}

SendOutcome SendMllp(const std::string& address, absl::string_view message,
                     absl::Duration timeout) {
  // MSH-10, to match the ACK's MSA-2.
  std::string control_id;
  if (absl::StartsWith(message, "MSH") && message.size() > 4) {
    std::vector<absl::string_view> msh =
        absl::StrSplit(message.substr(0, message.find('\r')), message[3]);
    if (msh.size() > 9) control_id = std::string(msh[9]);
  }
  const absl::Time deadline = absl::Now() + timeout;
  std::string error;
  Fd fd(Connect(address, deadline, &error));
  if (fd.get() < 0) return SendOutcome::Retry(error, /*unreachable=*/true);
  const std::string framed =
      absl::StrCat(std::string(1, kStartBlock), message, std::string(1, kEndBlock), "\r");
  for (size_t sent = 0; sent < framed.size();) {
    const ssize_t n = ::send(fd.get(), framed.data() + sent, framed.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!Await(fd.get(), POLLOUT, deadline))
        return SendOutcome::Retry("timed out sending the message");
    } else {
      return SendOutcome::Retry(absl::StrCat("sending to ", address, ": ", std::strerror(errno)),
                                true);
    }
  }
  std::string ack;
  bool in_frame = false;
  char buf[4096];
  for (;;) {
    if (!Await(fd.get(), POLLIN, deadline)) {
      return SendOutcome::Retry(
          absl::StrCat("no ACK from ", address, " within ", absl::FormatDuration(timeout)));
    }
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0)
      return SendOutcome::Retry(absl::StrCat(address, " closed the connection without an ACK"));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return SendOutcome::Retry(absl::StrCat("reading the ACK: ", std::strerror(errno)));
    }
    for (ssize_t i = 0; i < n; ++i) {
      const char c = buf[i];
      if (c == kStartBlock) {
        in_frame = true;
        ack.clear();
      } else if (c == kEndBlock && in_frame) {
        return ReadAck(ack, control_id);
      } else if (in_frame) {
        if (ack.size() >= kMaxAckBytes) return SendOutcome::Retry("the ACK is larger than 64 KiB");
        ack.push_back(c);
      }
    }
  }
}

}  // namespace rdg::outbound
