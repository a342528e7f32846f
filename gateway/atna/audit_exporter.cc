#include "gateway/atna/audit_exporter.h"

#include <glog/logging.h>
#include <signal.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "storage/base/status_macros.h"

namespace rdg::atna {

absl::StatusOr<std::unique_ptr<AuditExporter>> AuditExporter::Start(Stores stores, Options options,
                                                                    const Clock& clock) {
  RDG_ASSIGN_OR_RETURN(std::unique_ptr<SyslogTlsSender> sender,
                       SyslogTlsSender::Create(options.repository));
  auto exporter = std::unique_ptr<AuditExporter>(
      new AuditExporter(stores, std::move(options), clock, std::move(sender)));
  RDG_ASSIGN_OR_RETURN(int64_t confirmed, stores.audit.AuditExportedUpTo(exporter->destination_));
  {
    absl::MutexLock lock(&exporter->mu_);
    exporter->figures_.exported_seq = confirmed;
  }
  exporter->thread_ = std::thread([e = exporter.get()] { e->Loop(); });
  return exporter;
}

AuditExporter::AuditExporter(Stores stores, Options options, const Clock& clock,
                             std::unique_ptr<SyslogTlsSender> sender)
    : stores_(stores),
      options_(std::move(options)),
      clock_(clock),
      sender_(std::move(sender)),
      destination_(absl::StrCat(options_.repository.host, ":", options_.repository.port)) {}

AuditExporter::~AuditExporter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

AuditExporter::Figures AuditExporter::figures() const {
  absl::MutexLock lock(&mu_);
  return figures_;
}

void AuditExporter::Loop() {
  // A repository that closes the connection mid-batch must not raise SIGPIPE in the gateway:
  // blocked on this thread, a write there fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  absl::Duration wait = options_.poll;
  bool failing = false;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), wait);
      if (stopping_) return;
    }
    if (options_.leads && !options_.leads()) {
      wait = options_.poll;  // another gateway exports
      continue;
    }
    const absl::Status sent = ExportPending();
    if (sent.ok()) {
      if (failing) LOG(INFO) << "audit export to " << destination_ << ": delivering again";
      failing = false;
      wait = options_.poll;
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      ++figures_.failures;
    }
    if (!failing) {
      LOG(WARNING) << "audit export to " << destination_ << ": " << sent
                   << " (records wait in the audit log; retrying)";
    }
    failing = true;
    wait = std::min(wait * 2, options_.max_backoff);
    // Drop a SIGPIPE the failed write left pending on this thread.
    timespec none{0, 0};
    while (sigtimedwait(&pipe, nullptr, &none) == SIGPIPE) {
    }
  }
}

absl::Status AuditExporter::ExportPending() {
  RDG_ASSIGN_OR_RETURN(int64_t done, stores_.audit.AuditExportedUpTo(destination_));
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::OkStatus();
    }
    RDG_ASSIGN_OR_RETURN(storage::AuditExportRecord page,
                         stores_.audit.ExportAudit(done + 1, options_.batch_records));
    if (page.records.empty()) return absl::OkStatus();
    std::vector<std::string> frames;
    frames.reserve(page.records.size());
    absl::flat_hash_map<std::string, ExamFacts> exams;  // a batch names few exams, many times
    for (const storage::AuditRecord& r : page.records) frames.push_back(Frame(r, exams));
    RDG_RETURN_IF_ERROR(sender_->Deliver(frames));
    done = page.records.back().seq;
    const absl::Time now = clock_.Now();
    RDG_RETURN_IF_ERROR(stores_.audit.SetAuditExportedUpTo(destination_, done, now));
    {
      absl::MutexLock lock(&mu_);
      figures_.exported_seq = done;
      figures_.last_delivery = now;
    }
    if (static_cast<int>(page.records.size()) < options_.batch_records) return absl::OkStatus();
  }
}

std::string AuditExporter::Frame(const storage::AuditRecord& r,
                                 absl::flat_hash_map<std::string, ExamFacts>& exams) {
  ExamFacts facts;
  if (!r.exam_id.empty()) {
    auto [it, fresh] = exams.try_emplace(r.exam_id);
    if (fresh) {
      if (auto exam = stores_.exams.GetExam(r.exam_id); exam.ok() && exam->has_value()) {
        it->second.study_instance_uid = (*exam)->study_instance_uid;
        it->second.patient_name = (*exam)->patient.name;
      }
    }
    facts = it->second;
  }
  return OctetCountedFrame(SyslogMessage(r.at, options_.source.hostname, "rdg-gateway",
                                         options_.source.pid, r.seq,
                                         DicomAuditMessage(r, facts, options_.source)));
}

}  // namespace rdg::atna
