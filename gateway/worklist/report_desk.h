// Reports: a reader submits PRELIMINARY, FINAL or AMENDED versions (signed unless preliminary);
// the origin clinic receives final versions through a resumable feed and acknowledges them.
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
#include "gateway/signing/report_signature.h"
#include "gateway/worklist/reading_desk.h"
#include "rdg/v1/reading.pb.h"
#include "storage/index_store.h"

namespace rdg::worklist {

class ReportDesk {
 public:
  //! `max_clock_skew`: how far a signature's signed_at may be from the gateway's clock (config
  //! max_signing_clock_skew_seconds).
  ReportDesk(storage::IndexStore& index, ReadingDesk& reading,
             const signing::SignatureVerifier& verifier, const routing::SlaTable& sla,
             const Clock& clock, absl::Duration max_clock_skew);

  //! Accepts a report version after checking the caller, the claim, the desk it names
  //! (ReadingDesk::SigningDesk), the canonical bytes and — for FINAL and AMENDED — the signature
  //! and that the signer is the caller.
  absl::StatusOr<storage::ReportRecord> Submit(const auth::Principal& reader,
                                               const rdg::v1::SubmitReportRequest& request);

  //! An exam's reports as the reader working on it sees them.
  struct ExamReports {
    std::vector<storage::ReportRecord> versions;
    std::string desk;  //!< where the caller reads the exam: what their reports must name
  };
  //! Every version of the reports on an exam the reader works on, or breaks the glass for
  //! (ReadingDesk::ExamInContextOfWork).
  absl::StatusOr<ExamReports> Versions(const auth::Principal& reader, const std::string& exam_id,
                                       const std::string& break_glass_reason = "");

  //! Final and amended reports for the clinic after `after_seq` (marked delivered).
  absl::StatusOr<std::vector<storage::ReportRecord>> Feed(const auth::Principal& clinic,
                                                          int64_t after_seq, int32_t limit);
  absl::StatusOr<storage::ReportRecord> Acknowledge(const auth::Principal& clinic,
                                                    const std::string& report_id);
  //! The latest final/amended version of one of the clinic's exams.
  absl::StatusOr<storage::ReportRecord> Latest(const auth::Principal& clinic,
                                               const std::string& exam_id);

  //! The exams of reports Feed or Latest gave `clinic`, by exam id: what a printed report shows
  //! besides the signed content. An exam of another institution is never returned.
  absl::StatusOr<absl::flat_hash_map<std::string, storage::ExamRecord>> ExamsOf(
      const auth::Principal& clinic, const std::vector<storage::ReportRecord>& reports);

  //! Calls `wake` (from any thread) whenever a report for `institution` becomes deliverable,
  //! until Unsubscribe(token).
  int64_t Subscribe(const std::string& institution, std::function<void()> wake);
  void Unsubscribe(int64_t token);

 private:
  absl::Status CheckContent(const auth::Principal& reader,
                            const rdg::v1::SubmitReportRequest& request) const;
  void Notify(const std::string& institution);

  storage::IndexStore& index_;
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
