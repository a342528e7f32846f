#include "gateway/outbound/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gateway/outbound/dicom_sender.h"
#include "gateway/outbound/mllp_sender.h"
#include "glog/logging.h"

namespace rdg::outbound {
namespace {

using storage::OutboundAttempt;
using storage::OutboundJob;
using storage::OutboundKind;
using storage::OutboundState;
using storage::ReportRecord;
using storage::ReportStatus;

constexpr int32_t kPlanBatch = 100;
constexpr int32_t kSendBatch = 50;

class RealSender final : public Sender {
 public:
  RealSender(absl::Duration timeout, rdg::v1::TlsConfig identity)
      : timeout_(timeout), identity_(std::move(identity)) {}

  SendOutcome Send(const Destination& destination, const OutboundJob& job,
                   Payloads& payloads) override {
    if (destination.config.has_dicom()) {
      auto objects = payloads.DicomObjectsOf(job);
      if (!objects.ok()) return FromStatus(objects.status());
      return SendDicom(destination.config.dicom(), *objects, timeout_, identity_);
    }
    auto message = payloads.MessageOf(job, destination);
    if (!message.ok()) return FromStatus(message.status());
    return SendMllp(destination.config.hl7(), *message, timeout_, identity_);
  }

 private:
  //! A payload that cannot be made: gone for good (NOT_FOUND) or not now.
  static SendOutcome FromStatus(const absl::Status& s) {
    SendOutcome o;
    o.kind = absl::IsNotFound(s) || absl::IsInvalidArgument(s) ? SendOutcome::Kind::kRefused
                                                               : SendOutcome::Kind::kRetry;
    o.detail = absl::StrCat("cannot make what to send: ", s.message());
    return o;
  }

  const absl::Duration timeout_;
  const rdg::v1::TlsConfig identity_;
};

//! The kinds a report version makes for a destination.
std::vector<OutboundKind> KindsFor(const rdg::v1::Destination& d, const ReportRecord& report) {
  if (d.has_hl7()) return {OutboundKind::kReportOru};
  std::vector<OutboundKind> kinds;
  if (report.status == ReportStatus::kFinal && !d.dicom().reports_only()) {
    kinds.push_back(OutboundKind::kStudyImages);
  }
  kinds.push_back(OutboundKind::kReportSr);
  kinds.push_back(OutboundKind::kReportPdf);
  return kinds;
}

}  // namespace

std::unique_ptr<Sender> NetworkSender(absl::Duration timeout, const rdg::v1::TlsConfig& identity) {
  return std::make_unique<RealSender>(timeout, identity);
}

absl::flat_hash_map<std::string, Destination> Dispatcher::DestinationsOf(
    const rdg::v1::GatewayConfig& config) {
  absl::flat_hash_map<std::string, Destination> out;
  for (const auto& inst : config.institutions()) {
    for (const auto& d : inst.destinations()) out[d.name()] = Destination{inst.id(), d};
  }
  return out;
}

Dispatcher::Dispatcher(storage::OutboundStore& store, storage::Leadership& leadership,
                       absl::flat_hash_map<std::string, Destination> destinations,
                       Payloads& payloads, Sender& sender, const Clock& clock, Options options)
    : store_(store),
      leadership_(leadership),
      destinations_(std::move(destinations)),
      payloads_(payloads),
      sender_(sender),
      clock_(clock),
      options_(options) {
  for (const auto& [name, d] : destinations_) by_institution_[d.institution].push_back(name);
  for (auto& [institution, names] : by_institution_) std::sort(names.begin(), names.end());
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  if (destinations_.empty() || !threads_.empty()) return;
  threads_.emplace_back([this] {
    Loop([this]() -> absl::Status {
      if (!leadership_.Leads()) return absl::OkStatus();
      if (absl::Status s = Plan(); !s.ok()) return s;
      return FailUnconfigured();
    });
  });
  for (const auto& [name, d] : destinations_) {
    threads_.emplace_back([this, name = name] {
      Loop([this, &name]() -> absl::Status {
        return leadership_.Leads() ? SendDue(name) : absl::OkStatus();
      });
    });
  }
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void Dispatcher::Poke() {
  absl::MutexLock lock(&mu_);
  ++pokes_;
}

bool Dispatcher::stopping() {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void Dispatcher::Loop(const std::function<absl::Status()>& round) {
  int64_t seen = 0;
  for (;;) {
    if (absl::Status s = round(); !s.ok()) {
      LOG(WARNING) << "outbound: " << s;  // the index is unreachable: the next round tries again
    }
    absl::MutexLock lock(&mu_);
    auto woken = [this, &seen]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || pokes_ != seen; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll);
    if (stopping_) return;
    seen = pokes_;
  }
}

absl::Status Dispatcher::RunOnce() {
  if (!leadership_.Leads()) return absl::OkStatus();
  if (absl::Status s = Plan(); !s.ok()) return s;
  if (absl::Status s = FailUnconfigured(); !s.ok()) return s;
  std::vector<std::string> names;
  for (const auto& [name, d] : destinations_) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (absl::Status s = SendDue(name); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Dispatcher::FailUnconfigured() {
  auto summaries = store_.SummarizeOutbound();
  if (!summaries.ok()) return summaries.status();
  for (const storage::OutboundSummary& d : *summaries) {
    if (d.pending == 0 || destinations_.contains(d.destination)) continue;
    auto due = store_.DueJobs(d.destination, absl::InfiniteFuture(), kSendBatch);
    if (!due.ok()) return due.status();
    for (const OutboundJob& job : *due) {
      // Kept as failed, visible, until the destination is configured again and retried.
      absl::Status s = store_.RecordAttempt(
          job.job_id, {OutboundState::kFailed, "the destination is no longer configured", {}},
          clock_.Now());
      if (!s.ok() && !absl::IsFailedPrecondition(s)) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Dispatcher::Plan() {
  for (;;) {
    auto reports = store_.UnplannedReports(kPlanBatch);
    if (!reports.ok()) return reports.status();
    if (reports->empty()) return absl::OkStatus();
    std::vector<OutboundJob> jobs;
    for (const ReportRecord& r : *reports) {
      absl::flat_hash_set<std::string> seen;
      for (const std::string* institution : {&r.origin_institution, &r.reader_institution}) {
        auto it = by_institution_.find(*institution);
        if (it == by_institution_.end()) continue;
        for (const std::string& name : it->second) {
          if (!seen.insert(name).second) continue;
          for (OutboundKind kind : KindsFor(destinations_.at(name).config, r)) {
            OutboundJob j;
            j.destination = name;
            j.kind = kind;
            j.exam_id = r.exam_id;
            j.report_id = r.report_id;
            jobs.push_back(std::move(j));
          }
        }
      }
    }
    if (absl::Status s = store_.PlanJobs(jobs, reports->back().seq, clock_.Now()); !s.ok()) {
      return s;
    }
    if (!jobs.empty()) {
      LOG(INFO) << "outbound: " << jobs.size() << " jobs for " << reports->size()
                << " report versions";
    }
    if (static_cast<int32_t>(reports->size()) < kPlanBatch) return absl::OkStatus();
  }
}

storage::OutboundAttempt Dispatcher::Outcome(const OutboundJob& job,
                                             const SendOutcome& sent) const {
  OutboundAttempt a;
  a.detail = sent.detail;
  switch (sent.kind) {
    case SendOutcome::Kind::kSent:
      a.outcome = OutboundState::kSent;
      break;
    case SendOutcome::Kind::kRefused:
      a.outcome = OutboundState::kFailed;
      break;
    case SendOutcome::Kind::kRetry: {
      a.outcome = OutboundState::kPending;
      absl::Duration wait = options_.first_backoff;
      for (int i = 0; i < job.attempts && wait < options_.max_backoff; ++i) wait *= 2;
      a.retry_at = clock_.Now() + std::min(wait, options_.max_backoff);
      break;
    }
  }
  return a;
}

absl::Status Dispatcher::SendDue(const std::string& destination) {
  auto due = store_.DueJobs(destination, clock_.Now(), kSendBatch);
  if (!due.ok()) return due.status();
  const Destination& d = destinations_.at(destination);
  for (const OutboundJob& job : *due) {
    if (stopping() || !leadership_.Leads()) return absl::OkStatus();
    SendOutcome sent = sender_.Send(d, job, payloads_);
    const OutboundAttempt attempt = Outcome(job, sent);
    (attempt.outcome == OutboundState::kSent ? LOG(INFO) : LOG(WARNING))
        << "outbound: job " << job.job_id << " (" << storage::OutboundKindName(job.kind) << " of "
        << job.report_id << ") to " << job.destination << ": "
        << storage::OutboundStateName(attempt.outcome) << ": " << sent.detail;
    absl::Status s = store_.RecordAttempt(job.job_id, attempt, clock_.Now());
    if (!s.ok() && !absl::IsFailedPrecondition(s)) return s;  // precondition: a former leader's
    if (sent.unreachable) break;  // its other jobs wait for the next round
  }
  return absl::OkStatus();
}

}  // namespace rdg::outbound
