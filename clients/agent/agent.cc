#include "clients/agent/agent.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/oflog/oflog.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <glog/logging.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/agent/agent_config.h"
#include "clients/agent/dead_letters.h"
#include "clients/agent/dicom_receiver.h"
#include "clients/agent/forwarder.h"
#include "clients/agent/gateway_limits.h"
#include "clients/agent/inbox.h"
#include "clients/agent/mllp_listener.h"
#include "clients/agent/outbox.h"
#include "clients/common/connection.h"
#include "clients/common/output.h"
#include "clients/common/report_crypto.h"

namespace rdg::agent {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitConfig = 2;

bool WriteReadyFile(const std::string& path, const nlohmann::json& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content.dump() << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

std::string Age(absl::Duration d) { return clients::HumanDuration(absl::ToInt64Seconds(d)); }
std::string Bytes(int64_t n) { return clients::HumanBytes(static_cast<double>(n)); }
std::string LocalTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", t, absl::LocalTimeZone());
}

//! A reason as people read it: an HL7 ACK's segments (ended by CR) on lines of their own, every
//! line after the first indented by `indent` spaces, other control characters shown as '?'.
std::string Readable(const std::string& reason, size_t indent) {
  std::string out;
  bool line_start = false;
  for (size_t i = 0; i < reason.size(); ++i) {
    const char c = reason[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < reason.size() && reason[i + 1] == '\n') ++i;
      if (i + 1 < reason.size()) line_start = true;
      continue;
    }
    if (line_start) {
      out += '\n';
      out.append(indent, ' ');
      line_start = false;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c;
  }
  return out;
}

//! The report inbox, for the clinic of the agent's certificate (every report must be one of its
//! exams').
absl::StatusOr<std::unique_ptr<Inbox>> StartInbox(const rdg::v1::AgentConfig& c,
                                                  std::shared_ptr<grpc::Channel> channel,
                                                  Outbox& outbox) {
  absl::TimeZone zone = absl::UTCTimeZone();
  if (!absl::LoadTimeZone(c.time_zone(), &zone)) zone = absl::UTCTimeZone();  // validated before
  std::string institution, user, error;
  if (!clients::CertificateIdentity(c.gateway().certificate(), &institution, &user, &error)) {
    return absl::InvalidArgumentError(error);
  }
  auto inbox =
      std::make_unique<Inbox>(c.inbox(), c.gateway().ca(), institution, channel, outbox, zone);
  inbox->Start();
  return inbox;
}

//! Says what listens where, in the log and (for tests and supervisors) in the ready file.
void AnnounceReady(const rdg::v1::AgentConfig& c, int64_t pending, const DicomReceiver* dicom,
                   const MllpListener* hl7, const std::string& ready_file) {
  LOG(INFO) << "agent: " << pending << " items in the outbox"
            << (dicom ? absl::StrCat(", DICOM ", c.dicom().ae_title(), " on port ", dicom->port())
                      : "")
            << (dicom && dicom->tls_port() != 0
                    ? absl::StrCat(", DICOM TLS on port ", dicom->tls_port())
                    : "")
            << (hl7 ? absl::StrCat(", HL7 MLLP on port ", hl7->port()) : "") << ", forwarding to "
            << c.gateway().address();
  if (ready_file.empty()) return;
  nlohmann::json ready = {{"pid", getpid()},
                          {"dicom_port", dicom ? dicom->port() : 0},
                          {"dicom_tls_port", dicom ? dicom->tls_port() : 0},
                          {"hl7_port", hl7 ? hl7->port() : 0}};
  if (!WriteReadyFile(ready_file, ready)) {
    LOG(ERROR) << "agent: cannot write the ready file " << ready_file;
  }
}

}  // namespace

int RunAgent(const std::string& config_path, const std::string& ready_file) {
  auto config = LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return kExitConfig;
  }
  const rdg::v1::AgentConfig& c = *config;
  FLAGS_logtostderr = true;
  google::InitGoogleLogging("rdg-clinic-agent");
  OFLog::configure(OFLogger::WARN_LOG_LEVEL);  // DCMTK's own chatter stays out of our log
  if (!dcmDataDict.isDictionaryLoaded()) {
    std::cerr << "error: the DICOM data dictionary is not loaded (install the dcmtk package)\n";
    return kExitFailure;
  }
  // Signals go to sigwait() below, never to a worker thread: block them before any starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto outbox = Outbox::Open(c.data_dir());
  if (!outbox.ok()) {
    std::cerr << "error: outbox in " << c.data_dir() << ": " << outbox.status().message() << "\n";
    return kExitFailure;
  }
  clients::ConnectionOptions conn{c.gateway().address(), c.gateway().ca(),
                                  c.gateway().certificate(), c.gateway().private_key()};
  auto channel = conn.Connect();
  if (!channel) return kExitConfig;

  // Every received object is checked with the gateway's parser, in its own processes.
  auto check = ObjectCheck::Start(c.checks());
  if (!check.ok()) {
    std::cerr << "error: " << check.status().message() << "\n";
    return kExitFailure;
  }
  // ... with the gateway's limits: those it told last time now, fresh ones once it answers.
  GatewayLimits limits(channel, **outbox, **check,
                       absl::Seconds(c.checks().gateway_limits_refresh_seconds()));
  limits.ApplyKept();
  limits.Start();
  Forwarder forwarder(c.forwarder(), channel, **outbox);
  (*outbox)->set_on_add([&forwarder] { forwarder.Wake(); });
  std::unique_ptr<DicomReceiver> dicom;
  std::unique_ptr<MllpListener> hl7;
  std::unique_ptr<Inbox> inbox;
  if (!c.dicom().listen().empty()) {
    dicom = std::make_unique<DicomReceiver>(c.dicom(), **outbox, **check);
    if (auto s = dicom->Start(); !s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return kExitFailure;
    }
  }
  if (!c.hl7().listen().empty()) {
    hl7 = std::make_unique<MllpListener>(c.hl7(), **outbox, **check);
    if (auto s = hl7->Start(); !s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return kExitFailure;
    }
  }
  forwarder.Start();
  if (!c.inbox().dir().empty()) {
    auto started = StartInbox(c, channel, **outbox);
    if (!started.ok()) {
      std::cerr << "error: " << started.status().message() << "\n";
      return kExitFailure;
    }
    inbox = *std::move(started);
  }
  AnnounceReady(c, (*outbox)->PendingCount(), dicom.get(), hl7.get(), ready_file);

  int sig = 0;
  sigwait(&signals, &sig);
  LOG(INFO) << "agent: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", draining";
  const absl::Duration grace = absl::Seconds(c.shutdown_grace_seconds());
  if (hl7) hl7->Stop();
  if (dicom) dicom->Stop();
  if (inbox) inbox->Stop();
  forwarder.Stop(grace);
  limits.Stop();
  LOG(INFO) << "agent: stopped; " << (*outbox)->PendingCount()
            << " items stay in the outbox for the next start";
  return 0;
}

int RunAgentStatus(const std::string& config_path, bool as_json) {
  auto config = LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return kExitConfig;
  }
  const absl::Time now = absl::Now();
  auto stats = Outbox::ReadStats(config->data_dir(), now);
  if (!stats.ok()) {
    std::cerr << "error: " << stats.status().message() << "\n";
    return kExitFailure;
  }
  const OutboxStats& s = *stats;
  const double age_s = s.oldest_pending ? absl::ToDoubleSeconds(now - *s.oldest_pending) : 0.0;
  if (as_json) {
    nlohmann::json out = {{"pending", s.pending},
                          {"pending_bytes", s.pending_bytes},
                          {"oldest_pending_age_seconds", age_s},
                          {"sent", s.sent},
                          {"sent_bytes", s.sent_bytes},
                          {"dead_letter", s.dead},
                          {"sent_last_minute", s.sent_last_minute},
                          {"sent_bytes_last_minute", s.sent_bytes_last_minute},
                          {"last_error", s.last_error},
                          {"dead_letter_dir", config->data_dir() + "/dead-letter"}};
    if (s.last_error_at) out["last_error_at"] = absl::FormatTime(*s.last_error_at);
    if (s.last_sent_at) out["last_sent_at"] = absl::FormatTime(*s.last_sent_at);
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "outbox        " << s.pending << " items, " << Bytes(s.pending_bytes);
  if (s.oldest_pending) std::cout << ", oldest waiting " << Age(now - *s.oldest_pending);
  std::cout << "\nforwarded     " << s.sent << " items, " << Bytes(s.sent_bytes);
  if (s.last_sent_at) std::cout << ", last " << Age(now - *s.last_sent_at) << " ago";
  std::cout << "\nrate          " << s.sent_last_minute << " items/min, "
            << Bytes(s.sent_bytes_last_minute) << "/min (last minute)"
            << "\ndead-letter   " << s.dead << " items in " << config->data_dir()
            << "/dead-letter\n";
  if (!s.last_error.empty()) {
    std::cout << "last error    " << Readable(s.last_error, 14);
    if (s.last_error_at) std::cout << " (" << Age(now - *s.last_error_at) << " ago)";
    std::cout << "\n";
  }
  return 0;
}

int RunDeadLetters(const std::string& config_path, const DeadLetterCommand& command, bool as_json) {
  auto config = LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return kExitConfig;
  }
  const std::string& data_dir = config->data_dir();
  const absl::Time now = absl::Now();
  auto fail = [](const absl::Status& s) {
    std::cerr << "error: " << s.message() << "\n";
    return kExitFailure;
  };
  if (command.retry.has_value() || command.retry_all) {
    auto queued = RetryDeadLetters(data_dir, command.retry, CurrentOperator(), now);
    if (!queued.ok()) return fail(queued.status());
    if (as_json) {
      std::cout << nlohmann::json({{"queued", *queued}}).dump(2) << "\n";
    } else {
      std::cout << queued->size() << " dead letter" << (queued->size() == 1 ? "" : "s")
                << " queued again" << (queued->empty() ? "" : ":");
      for (int64_t id : *queued) std::cout << " " << id;
      std::cout << "\n";
    }
    return 0;
  }
  if (command.purge.has_value()) {
    if (auto s = PurgeDeadLetter(data_dir, *command.purge, CurrentOperator(), now); !s.ok()) {
      return fail(s);
    }
    if (as_json) {
      std::cout << nlohmann::json({{"purged", *command.purge}}).dump(2) << "\n";
    } else {
      std::cout << "dead letter " << *command.purge << " removed (recorded in the agent's "
                << "operator log)\n";
    }
    return 0;
  }
  auto letters = ListDeadLetters(data_dir);
  if (!letters.ok()) return fail(letters.status());
  if (as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const DeadLetter& d : *letters) {
      nlohmann::json j = {{"id", d.id},
                          {"kind", rdg::v1::ObjectKind_Name(d.kind)},
                          {"source", d.source},
                          {"label", d.label},
                          {"size", d.size},
                          {"received_at", absl::FormatTime(d.received_at)},
                          {"attempts", d.attempts},
                          {"reason", d.reason},
                          {"file", d.file}};
      if (d.dead_at) j["dead_at"] = absl::FormatTime(*d.dead_at);
      out.push_back(std::move(j));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (letters->empty()) {
    std::cout << "no dead letters in " << data_dir << "/dead-letter\n";
    return 0;
  }
  std::cout << letters->size() << " dead letter" << (letters->size() == 1 ? "" : "s") << " in "
            << data_dir << "/dead-letter (retry: --retry ID or --all; remove: --purge ID)\n";
  for (const DeadLetter& d : *letters) {
    std::cout << "\n#" << d.id << "  " << rdg::v1::ObjectKind_Name(d.kind) << " " << d.label
              << "\n  from      " << d.source << ", received " << LocalTime(d.received_at)
              << "\n  size      " << Bytes(d.size) << ", " << d.attempts << " attempt"
              << (d.attempts == 1 ? "" : "s");
    if (d.dead_at) std::cout << ", dead-lettered " << LocalTime(*d.dead_at);
    std::cout << "\n  reason    " << Readable(d.reason, 12) << "\n  file      " << d.file << "\n";
  }
  return 0;
}

}  // namespace rdg::agent
