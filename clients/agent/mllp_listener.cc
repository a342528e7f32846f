#include "clients/agent/mllp_listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glog/logging.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clients/agent/mllp_framing.h"
#include "clients/agent/tcp_server.h"
#include "storage/base/posix_file.h"
#include "storage/formats/hl7_lab.h"
#include "storage/parsing/parsed_object.h"

namespace rdg::agent {
namespace {

constexpr int kPollMs = 200;

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

//! Ends a connection so that what was sent (an ACK) reaches a sender that is still sending:
//! closing a socket with unread input makes the kernel answer RST, which destroys the ACK in
//! flight before a send-then-read client reads it. So: FIN after the queued bytes, then read
//! and drop what the sender still sends until it closes too — at most kDrainBytes or kDrainTime,
//! so a sender that never stops cannot hold the thread.
void CloseGracefully(int fd) {
  constexpr int64_t kDrainBytes = 16 << 20;
  constexpr absl::Duration kDrainTime = absl::Seconds(5);
  shutdown(fd, SHUT_WR);
  const absl::Time until = absl::Now() + kDrainTime;
  char sink[64 * 1024];
  for (int64_t drained = 0; drained < kDrainBytes;) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    const ssize_t n = recv(fd, sink, sizeof(sink), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the sender closed its side (or the connection is gone)
    drained += n;
  }
  close(fd);
}

std::string PeerName(const sockaddr_storage& addr) {
  char host[NI_MAXHOST] = {};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), sizeof(addr), host, sizeof(host),
                  nullptr, 0, NI_NUMERICHOST) != 0) {
    return "?";
  }
  return host;
}

}  // namespace

MllpListener::MllpListener(const rdg::v1::Hl7Listener& config, Outbox& outbox,
                           const ObjectCheck& check)
    : config_(config), outbox_(outbox), check_(check) {}

MllpListener::~MllpListener() { Stop(); }

absl::Status MllpListener::Start() {
  auto fd = ListenTcp(config_.listen(), "hl7.listen", &port_);
  if (!fd.ok()) return fd.status();
  listen_fd_ = *fd;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void MllpListener::Stop() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  connections_.JoinAll();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

void MllpListener::AcceptLoop() {
  while (!stopping_) {
    connections_.Reap();
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, kPollMs) <= 0) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (!MakeRoom(fd)) {
      LOG(WARNING) << "hl7: connection refused, " << config_.max_connections() << " already open";
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connections_.Spawn([this, fd, peer = PeerName(addr)] {
      Serve(fd, peer);
      Forget(fd);
      CloseGracefully(fd);
    });
  }
}

bool MllpListener::MakeRoom(int fd) {
  absl::MutexLock lock(&connections_mu_);
  if (static_cast<int>(phase_started_.size()) >= config_.max_connections()) {
    auto oldest =
        std::min_element(phase_started_.begin(), phase_started_.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    if (oldest == phase_started_.end()) return false;
    LOG(INFO) << "hl7: " << config_.max_connections() << " connections open: ending one whose "
              << "phase began " << absl::FormatDuration(absl::Now() - oldest->second)
              << " ago to make room";
    // Its thread sees the end of the connection, forgets and closes it.
    shutdown(oldest->first, SHUT_RDWR);
    phase_started_.erase(oldest);
  }
  phase_started_[fd] = absl::Now();
  return true;
}

void MllpListener::PhaseStarted(int fd) {
  absl::MutexLock lock(&connections_mu_);
  if (auto it = phase_started_.find(fd); it != phase_started_.end()) it->second = absl::Now();
}

void MllpListener::Forget(int fd) {
  absl::MutexLock lock(&connections_mu_);
  phase_started_.erase(fd);
}

void MllpListener::Serve(int fd, std::string peer) {
  MllpDeframer deframer(static_cast<size_t>(config_.max_message_bytes()));
  // The current phase's deadline: the end of the idle time between messages, or of the time a
  // message has to arrive whole. Bytes never extend it; a completed message starts a new one.
  const absl::Duration idle_timeout = absl::Seconds(config_.idle_timeout_seconds());
  const absl::Duration frame_timeout = absl::Seconds(config_.frame_timeout_seconds());
  absl::Time deadline = absl::Now() + idle_timeout;
  char chunk[64 * 1024];
  for (;;) {
    // While stopping, a connection between messages closes; one inside a message finishes it.
    if (stopping_ && !deframer.in_frame()) return;
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, kPollMs);
    if (absl::Now() > deadline) {
      LOG(INFO) << "hl7: connection from " << peer << " closed: "
                << (deframer.in_frame()
                        ? "a message did not arrive whole within hl7.frame_timeout_seconds"
                        : "silent for hl7.idle_timeout_seconds");
      return;
    }
    if (ready == 0) continue;
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed (a partial message was never acknowledged: the sender resends)
    for (ssize_t i = 0; i < n; ++i) {
      switch (deframer.Take(chunk[i])) {
        case MllpDeframer::Step::kNothing:
          break;
        case MllpDeframer::Step::kFrameStarted:
          deadline = absl::Now() + frame_timeout;
          PhaseStarted(fd);
          break;
        case MllpDeframer::Step::kMessage:
          if (!SendAll(fd, Handle(deframer.message(), peer))) return;
          deadline = absl::Now() + idle_timeout;
          PhaseStarted(fd);
          break;
        case MllpDeframer::Step::kTooLarge: {
          LOG(WARNING) << "hl7: message from " << peer << " exceeds " << config_.max_message_bytes()
                       << " bytes; connection closed";
          formats::Hl7Rejection why{formats::Hl7AckCode::kReject, "207", "",
                                    "message too large for this receiver"};
          const std::string ack =
              formats::BuildHl7Ack(PlainMsh(deframer.message()), formats::Hl7AckCode::kReject, &why,
                                   absl::Now(), absl::StrCat("RDGA", ++ack_counter_));
          SendAll(fd, MllpFrame(ack));
          return;
        }
      }
    }
  }
}

std::string MllpListener::Handle(const std::string& message, const std::string& peer) {
  const absl::Time now = absl::Now();
  const std::string ack_id = absl::StrCat("RDGA", absl::ToUnixMillis(now), "-", ++ack_counter_);
  // An ACK the agent writes itself (the message could not be stored or checked): MSH only, read
  // from the first bytes, is enough to address it.
  auto own_ack = [&](formats::Hl7AckCode code, const std::string& reason) {
    formats::Hl7Rejection why{code, "207", "", reason};
    return MllpFrame(formats::BuildHl7Ack(PlainMsh(message), code, &why, now, ack_id));
  };
  // The message goes to a file first: the gateway's parser, in its own process, reads it there.
  const std::string path = outbox_.NewObjectPath(rdg::v1::HL7V2_LAB);
  absl::Status written;
  {
    auto f = storage::File::OpenForAppend(path, /*create=*/true);
    written = f.ok() ? f->Append(message) : f.status();
  }
  if (!written.ok()) {
    (void)storage::RemoveFile(path);
    ++refused_;
    LOG(ERROR) << "hl7: could not store a message: " << written;
    return own_ack(formats::Hl7AckCode::kError,
                   "the receiver could not store the message; send it again");
  }
  absl::StatusOr<parsing::ParsedObject> parsed =
      check_.Check(rdg::v1::HL7V2_LAB, path, now, ack_id);
  if (!parsed.ok()) {
    (void)storage::RemoveFile(path);
    ++refused_;
    LOG(INFO) << "hl7: message from " << peer << " refused: " << parsed.status().message();
    // The parser's own AE/AR, as the gateway would answer; otherwise (a parser crash, the
    // checks busy) one of ours.
    if (std::optional<rdg::v1::Hl7Acknowledgement> ack = parsing::AckOf(parsed.status())) {
      return MllpFrame(ack->message());
    }
    // Never acceptable (malformed, larger than the gateway takes): reject; otherwise an error
    // the sender may retry.
    const bool never =
        absl::IsInvalidArgument(parsed.status()) || absl::IsResourceExhausted(parsed.status());
    return own_ack(never ? formats::Hl7AckCode::kReject : formats::Hl7AckCode::kError,
                   std::string(parsed.status().message()));
  }
  // The gateway's identity rule, as far as the agent's four weeks of history know: a message
  // under an identity (sender and control ID) already used by a different message is refused as
  // the gateway would; the same message sent again is acknowledged and not queued twice.
  const std::string identity = parsed->object.sop_instance_uid;
  if (std::optional<std::string> known = outbox_.KnownContent(rdg::v1::HL7V2_LAB, identity)) {
    (void)storage::RemoveFile(path);
    if (*known == parsed->object.content_key) {
      VLOG(1) << "hl7: message from " << peer << " sent again; acknowledged, not queued twice";
      return MllpFrame(formats::BuildHl7Ack(parsed->hl7_header, formats::Hl7AckCode::kAccept,
                                            nullptr, now, ack_id));
    }
    ++refused_;
    LOG(INFO) << "hl7: message from " << peer << " refused: its control ID is already used";
    formats::Hl7Rejection why{formats::Hl7AckCode::kError, "205", "MSH^1^10",
                              "message control ID already used for a different message"};
    return MllpFrame(
        formats::BuildHl7Ack(parsed->hl7_header, formats::Hl7AckCode::kError, &why, now, ack_id));
  }
  absl::StatusOr<int64_t> id =
      outbox_.Add(path, rdg::v1::HL7V2_LAB, identity, absl::StrCat("hl7 ", peer), now,
                  parsed->object.content_key);
  if (!id.ok()) {
    (void)storage::RemoveFile(path);
    ++refused_;
    LOG(ERROR) << "hl7: could not make a message durable: " << id.status();
    return own_ack(formats::Hl7AckCode::kError,
                   "the receiver could not store the message; send it again");
  }
  ++accepted_;
  VLOG(1) << "hl7: outbox item " << *id << " from " << peer;
  return MllpFrame(
      formats::BuildHl7Ack(parsed->hl7_header, formats::Hl7AckCode::kAccept, nullptr, now, ack_id));
}

}  // namespace rdg::agent
