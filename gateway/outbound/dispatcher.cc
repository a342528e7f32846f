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
  explicit RealSender(absl::Duration timeout) : timeout_(timeout) {}

  SendOutcome Send(const Destination& destination, const OutboundJob& job,
                   Payloads& payloads) override {
    if (destination.config.has_dicom()) {
      auto objects = payloads.DicomObjectsOf(job);
      if (!objects.ok()) return FromStatus(objects.status());
      return SendDicom(destination.config.dicom(), *objects, timeout_);
    }
    auto message = payloads.MessageOf(job, destination);
    if (!message.ok()) return FromStatus(message.status());
    return SendMllp(destination.config.hl7().address(), *message, timeout_);
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

std::unique_ptr<Sender> NetworkSender(absl::Duration timeout) {
  return std::make_unique<RealSender>(timeout);
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
  if (destinations_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Dispatcher::Poke() {
  absl::MutexLock lock(&mu_);
  poked_ = true;
}

void Dispatcher::Loop() {
  for (;;) {
    if (absl::Status s = RunOnce(); !s.ok()) {
      LOG(WARNING) << "outbound: " << s;  // the index is unreachable: the next round tries again
    }
    absl::MutexLock lock(&mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || poked_; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll);
    if (stopping_) return;
    poked_ = false;
  }
}

absl::Status Dispatcher::RunOnce() {
  if (!leadership_.Leads()) return absl::OkStatus();
  if (absl::Status s = Plan(); !s.ok()) return s;
  return SendDue();
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

absl::Status Dispatcher::SendDue() {
  auto due = store_.DueJobs(clock_.Now(), kSendBatch);
  if (!due.ok()) return due.status();
  absl::flat_hash_set<std::string> unreachable;
  for (const OutboundJob& job : *due) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::OkStatus();
    }
    if (!leadership_.Leads()) return absl::OkStatus();
    if (unreachable.contains(job.destination)) continue;
    OutboundAttempt attempt;
    auto it = destinations_.find(job.destination);
    if (it == destinations_.end()) {
      // Removed from the configuration: kept as failed, visible, until it comes back.
      attempt = {OutboundState::kFailed, "the destination is no longer configured", {}};
    } else {
      SendOutcome sent = sender_.Send(it->second, job, payloads_);
      if (sent.unreachable) unreachable.insert(job.destination);
      attempt = Outcome(job, sent);
      (attempt.outcome == OutboundState::kSent ? LOG(INFO) : LOG(WARNING))
          << "outbound: job " << job.job_id << " (" << storage::OutboundKindName(job.kind) << " of "
          << job.report_id << ") to " << job.destination << ": "
          << storage::OutboundStateName(attempt.outcome) << ": " << sent.detail;
    }
    absl::Status s = store_.RecordAttempt(job.job_id, attempt, clock_.Now());
    if (absl::IsFailedPrecondition(s)) continue;  // finished meanwhile (a former leader)
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace rdg::outbound
