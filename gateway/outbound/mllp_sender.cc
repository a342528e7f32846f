#include "gateway/outbound/mllp_sender.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gateway/common/tcp_connect.h"
#include "gateway/common/tls_client.h"

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

namespace {

//! The connection to the HIS, plain or TLS: writes all of a buffer, reads what comes (0: the
//! HIS closed it; DEADLINE_EXCEEDED: nothing came within the timeout).
struct Channel {
  std::function<absl::Status(absl::string_view)> write;
  std::function<absl::StatusOr<size_t>(char*, size_t)> read;
};

Channel PlainChannel(const TcpConnection& tcp, const std::string& address) {
  const int fd = tcp.fd();
  return {
      [fd, address](absl::string_view data) -> absl::Status {
        for (size_t sent = 0; sent < data.size();) {
          const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            return absl::UnavailableError(
                absl::StrCat("sending to ", address, ": ",
                             errno == EAGAIN ? "timed out" : std::strerror(errno)));
          }
          sent += static_cast<size_t>(n);
        }
        return absl::OkStatus();
      },
      [fd](char* buffer, size_t size) -> absl::StatusOr<size_t> {
        for (;;) {
          const ssize_t n = ::recv(fd, buffer, size, 0);
          if (n >= 0) return static_cast<size_t>(n);
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return absl::DeadlineExceededError("nothing came in time");
          }
          return absl::UnavailableError(absl::StrCat("reading the ACK: ", std::strerror(errno)));
        }
      }};
}

}  // namespace

SendOutcome SendMllp(const rdg::v1::Hl7Destination& destination, absl::string_view message,
                     absl::Duration timeout, const rdg::v1::TlsConfig& identity) {
  const std::string& address = destination.address();
  // MSH-10, to match the ACK's MSA-2.
  std::string control_id;
  if (absl::StartsWith(message, "MSH") && message.size() > 4) {
    std::vector<absl::string_view> msh =
        absl::StrSplit(message.substr(0, message.find('\r')), message[3]);
    if (msh.size() > 9) control_id = std::string(msh[9]);
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return SendOutcome::Retry(absl::StrCat("bad address ", address));
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = address.substr(colon + 1);
  // Blocking, each send and receive bounded by `timeout` (tcp_connect.h), the whole exchange
  // by the deadline.
  const absl::Time deadline = absl::Now() + timeout;
  std::optional<TcpConnection> tcp;
  std::optional<TlsSession> tls;
  Channel channel;
  if (destination.tls()) {
    absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Create(
        {destination.ca_file(), identity.cert_file(), identity.key_file(), "hl7"});
    if (!client.ok()) return SendOutcome::Retry(std::string(client.status().message()));
    absl::StatusOr<TlsSession> session = (*client)->Connect(
        host, port, destination.server_name().empty() ? host : destination.server_name(), timeout,
        address);
    if (!session.ok()) {
      return SendOutcome::Retry(std::string(session.status().message()), /*unreachable=*/true);
    }
    tls = *std::move(session);
    channel = {[&tls](absl::string_view data) { return tls->Write(data); },
               [&tls](char* buffer, size_t size) { return tls->Read(buffer, size); }};
  } else {
    absl::StatusOr<TcpConnection> connection = ConnectTcp(host, port, timeout);
    if (!connection.ok()) {
      return SendOutcome::Retry(std::string(connection.status().message()), /*unreachable=*/true);
    }
    tcp = *std::move(connection);
    channel = PlainChannel(*tcp, address);
  }
  const std::string framed =
      absl::StrCat(std::string(1, kStartBlock), message, std::string(1, kEndBlock), "\r");
  if (absl::Status s = channel.write(framed); !s.ok()) {
    return SendOutcome::Retry(std::string(s.message()), /*unreachable=*/true);
  }
  std::string ack;
  bool in_frame = false;
  char buf[4096];
  for (;;) {
    absl::StatusOr<size_t> n = channel.read(buf, sizeof(buf));
    if ((!n.ok() && absl::IsDeadlineExceeded(n.status())) || absl::Now() > deadline) {
      return SendOutcome::Retry(
          absl::StrCat("no ACK from ", address, " within ", absl::FormatDuration(timeout)));
    }
    if (!n.ok()) return SendOutcome::Retry(std::string(n.status().message()));
    if (*n == 0) {
      return SendOutcome::Retry(absl::StrCat(address, " closed the connection without an ACK"));
    }
    for (size_t i = 0; i < *n; ++i) {
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
