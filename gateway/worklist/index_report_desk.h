// The report desk over the index (see report_desk.h for what each method does): checks a
// submission against the claim, the reading desk and the signature verifier, writes versions,
// serves the clinics' feed and wakes report watches.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/auth/principal.h"
#include "gateway/common/clock.h"
#include "gateway/routing/router.h"
#include "gateway/signing/signature_verifier.h"
#include "gateway/worklist/reading_desk.h"
#include "gateway/worklist/report_desk.h"
#include "rdg/v1/reading.pb.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"
#include "storage/index/report_store.h"

namespace rdg::worklist {

class IndexReportDesk final : public ReportDesk {
 public:
  //! `max_clock_skew`: how far a signature's signed_at may be from the gateway's clock (config
  //! max_signing_clock_skew_seconds).
  //! The index's stores it uses.
  struct Stores {
    storage::ReportStore& reports;
    storage::ExamStore& exams;
    storage::AuditStore& audit;
  };
  IndexReportDesk(Stores stores, ReadingDesk& reading, const signing::SignatureVerifier& verifier,
                  const routing::SlaTable& sla, const Clock& clock, absl::Duration max_clock_skew);

  absl::StatusOr<storage::ReportRecord> Submit(
      const auth::Principal& reader, const rdg::v1::SubmitReportRequest& request) override;
  absl::StatusOr<ExamReports> Versions(const auth::Principal& reader, const std::string& exam_id,
                                       const std::string& break_glass_reason) override;
  absl::StatusOr<std::vector<storage::ReportRecord>> Feed(const auth::Principal& clinic,
                                                          int64_t after_seq,
                                                          int32_t limit) override;
  absl::StatusOr<storage::ReportRecord> Acknowledge(const auth::Principal& clinic,
                                                    const std::string& report_id) override;
  absl::StatusOr<storage::ReportRecord> Latest(const auth::Principal& clinic,
                                               const std::string& exam_id) override;
  absl::StatusOr<absl::flat_hash_map<std::string, storage::ExamRecord>> ExamsOf(
      const auth::Principal& clinic, const std::vector<storage::ReportRecord>& reports) override;
  int64_t Subscribe(const std::string& institution, std::function<void()> wake) override;
  void Unsubscribe(int64_t token) override;
  //! Wakes the report watches of `institution` (every watch for ""): a report of it was signed,
  //! here or through another gateway on the same index.
  void WakeWatchers(const std::string& institution);

 private:
  absl::Status CheckContent(const auth::Principal& reader,
                            const rdg::v1::SubmitReportRequest& request) const;
  //! The report names the desk the configuration gives the reader for the exam's queue.
  absl::Status CheckDesk(const auth::Principal& reader, const storage::ExamRecord& exam,
                         const rdg::v1::ReportContent& content) const;
  //! FINAL and AMENDED are signed, dated within the skew, verified, and signed by the caller.
  absl::Status CheckSignature(const auth::Principal& reader,
                              const rdg::v1::SubmitReportRequest& request, absl::Time now) const;
  //! The version to store, with its acknowledgement targets.
  storage::ReportRecord ToRecord(const auth::Principal& reader, const storage::ExamRecord& exam,
                                 const rdg::v1::SubmitReportRequest& request, absl::Time now) const;

  const Stores stores_;
  ReadingDesk& reading_;
  const signing::SignatureVerifier& verifier_;
  const routing::SlaTable& sla_;
  const Clock& clock_;
  const absl::Duration max_clock_skew_;

  struct Subscriber {
    std::string institution;
    std::function<void()> wake;
  };
  absl::Mutex mu_;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdg::worklist
