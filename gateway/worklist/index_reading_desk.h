// The reading desk over the index (see reading_desk.h for what each method does): worklists from
// the queues of the reader's desks (config `desks`), claims with leases, priors through
// identity::PatientLinker, escalation along the institutions' parent chain. Audits every access.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "gateway/auth/principal.h"
#include "gateway/common/clock.h"
#include "gateway/identity/patient_match.h"
#include "gateway/routing/router.h"
#include "gateway/worklist/reading_desk.h"
#include "rdg/v1/config.pb.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"
#include "storage/index/identity_conflict_store.h"
#include "storage/index/lab_result_store.h"
#include "storage/index/report_store.h"
#include "storage/index/worklist_store.h"

namespace rdg::worklist {

class IndexReadingDesk final : public ReadingDesk {
 public:
  //! The index's stores it uses.
  struct Stores {
    storage::WorklistStore& worklist;
    storage::ExamStore& exams;
    storage::ReportStore& reports;
    storage::LabResultStore& lab_results;
    storage::AuditStore& audit;
    storage::IdentityConflictStore& identity_conflicts;
  };
  IndexReadingDesk(const rdg::v1::GatewayConfig& config, Stores stores,
                   const routing::SlaTable& sla, const Clock& clock);

  absl::StatusOr<storage::WorklistPage> Worklist(const auth::Principal& reader,
                                                 storage::WorklistQuery filter) override;
  absl::StatusOr<storage::ClaimRecord> Claim(const auth::Principal& reader,
                                             const std::string& exam_id, bool for_amendment,
                                             const std::string& amendment_reason) override;
  //! A claim to read (not for amendment).
  absl::StatusOr<storage::ClaimRecord> Claim(const auth::Principal& reader,
                                             const std::string& exam_id) {
    return Claim(reader, exam_id, false, "");
  }
  absl::StatusOr<storage::ClaimRecord> Renew(const auth::Principal& reader,
                                             const std::string& exam_id) override;
  absl::Status Release(const auth::Principal& reader, const std::string& exam_id) override;
  absl::StatusOr<std::vector<storage::ObjectRecord>> OpenForFetch(
      const auth::Principal& reader, const std::string& exam_id) override;
  absl::StatusOr<int> ExpireLeases() override;

  absl::StatusOr<storage::ExamRecord> Escalate(const auth::Principal& reader,
                                               const std::string& exam_id,
                                               const std::string& reason) override;
  absl::StatusOr<int> EscalateOverdue() override;
  absl::StatusOr<PriorsView> Priors(const auth::Principal& reader, const std::string& exam_id,
                                    const std::string& break_glass_reason) override;
  //! Priors without breaking the glass.
  absl::StatusOr<PriorsView> Priors(const auth::Principal& reader, const std::string& exam_id) {
    return Priors(reader, exam_id, "");
  }
  //! Working on it means ReadsExam (below).
  absl::StatusOr<storage::ExamRecord> ExamInContextOfWork(
      const auth::Principal& reader, const std::string& exam_id, absl::string_view what,
      const std::string& break_glass_reason) override;

  absl::Duration lease() const { return lease_; }
  //! Queues a reader reads: those of their desks (config `desks`), or every queue of their
  //! institution when it has no desks; empty if none.
  const std::vector<std::string>& QueuesOf(const auth::Principal& reader) const;
  std::string SigningDesk(const auth::Principal& reader, const std::string& queue) const override;
  //! Queues served by an institution (empty if none).
  const std::vector<std::string>& InstitutionQueues(const std::string& institution) const;
  absl::StatusOr<storage::ExamRecord> ExamInReadersQueues(const auth::Principal& reader,
                                                          const std::string& exam_id) override;

 private:
  //! A claim refused because another reader holds it, said with the holder and the lease's end
  //! in the configured zone; any other refusal unchanged.
  absl::Status ClaimConflict(const std::string& exam_id, const auth::Principal& reader,
                             absl::Status refused);
  //! The consultation queue above `queue` for `exam_type`: a queue of the parent institution of
  //! the queue's institution that reads that exam type. Empty if there is none.
  std::string NextLevelQueue(const std::string& queue, const std::string& exam_type) const;
  //! Whether the reader works on the exam now: holds its live claim, or (no one holds it)
  //! signed its FINAL or an addendum within kAuthorAccess.
  absl::StatusOr<bool> ReadsExam(const auth::Principal& reader, const std::string& exam_id);
  absl::Status Audit(const auth::Principal& who, const std::string& action,
                     const std::string& exam_id, const std::string& detail);

  const Stores stores_;
  const routing::SlaTable& sla_;
  const Clock& clock_;
  identity::PatientLinker linker_{stores_.exams, stores_.identity_conflicts, clock_};
  const absl::Duration lease_;
  const absl::TimeZone zone_;  //!< for times in texts people read (escalation reasons)
  absl::flat_hash_map<std::string, std::vector<std::string>> queues_of_;  //!< institution → queues
  absl::flat_hash_map<std::string, rdg::v1::Queue> queue_by_name_;
  static std::string DeskKey(const std::string& institution, const std::string& user);
  absl::flat_hash_set<std::string> institutions_with_desks_;
  //! DeskKey(institution, reader) → the queues of the reader's desks
  absl::flat_hash_map<std::string, std::vector<std::string>> desk_queues_;
  //! DeskKey(institution, reader) → their desks, in config order
  absl::flat_hash_map<std::string, std::vector<rdg::v1::Desk>> desks_of_;
  absl::flat_hash_map<std::string, std::string> parent_of_;  //!< institution → parent
  std::string fallback_queue_;                               //!< never an escalation target
};

}  // namespace rdg::worklist
