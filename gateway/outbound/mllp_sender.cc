#include "gateway/outbound/mllp_sender.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gateway/common/tcp_connect.h"

namespace rdg::outbound {
namespace {

constexpr char kStartBlock = '\x0b';
constexpr char kEndBlock = '\x1c';
constexpr size_t kMaxAckBytes = 64 * 1024;

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
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon == std::string::npos ? 0 : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  absl::StatusOr<TcpConnection> connection =
      colon == std::string::npos ? absl::InvalidArgumentError(absl::StrCat("bad address ", address))
                                 : ConnectTcp(host, address.substr(colon + 1), timeout);
  if (!connection.ok()) {
    return SendOutcome::Retry(std::string(connection.status().message()), /*unreachable=*/true);
  }
  // Blocking, each send and receive bounded by `timeout` (tcp_connect.h), the whole exchange
  // by the deadline.
  const absl::Time deadline = absl::Now() + timeout;
  const int fd = connection->fd();
  const std::string framed =
      absl::StrCat(std::string(1, kStartBlock), message, std::string(1, kEndBlock), "\r");
  for (size_t sent = 0; sent < framed.size();) {
    const ssize_t n = ::send(fd, framed.data() + sent, framed.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return SendOutcome::Retry(absl::StrCat("sending to ", address, ": ",
                                             errno == EAGAIN ? "timed out" : std::strerror(errno)),
                                true);
    }
    sent += static_cast<size_t>(n);
  }
  std::string ack;
  bool in_frame = false;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if ((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) || absl::Now() > deadline) {
      return SendOutcome::Retry(
          absl::StrCat("no ACK from ", address, " within ", absl::FormatDuration(timeout)));
    }
    if (n < 0) return SendOutcome::Retry(absl::StrCat("reading the ACK: ", std::strerror(errno)));
    if (n == 0) {
      return SendOutcome::Retry(absl::StrCat(address, " closed the connection without an ACK"));
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
