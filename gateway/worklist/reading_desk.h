// The reader's side of the workflow: worklists of the queues of the reader's desks,
// claims with leases, and access checks for fetching. Every access to patient data is audited.
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
#include "rdg/v1/config.pb.h"
#include "storage/index_store.h"

namespace rdg::worklist {

class ReadingDesk {
 public:
  ReadingDesk(const rdg::v1::GatewayConfig& config, storage::IndexStore& index,
              const routing::SlaTable& sla, const Clock& clock);

  //! The caller's worklist; `filter.queues` is ignored (the caller's queues are used).
  absl::StatusOr<storage::WorklistPage> Worklist(const auth::Principal& reader,
                                                 storage::WorklistQuery filter);
  //! Takes the exam; `for_amendment`: a FINAL exam, for an addendum by a reader of its desk
  //! who did not write the report, with a reason (audited "claim_for_amendment").
  absl::StatusOr<storage::ClaimRecord> Claim(const auth::Principal& reader,
                                             const std::string& exam_id, bool for_amendment = false,
                                             const std::string& amendment_reason = "");
  absl::StatusOr<storage::ClaimRecord> Renew(const auth::Principal& reader,
                                             const std::string& exam_id);
  absl::Status Release(const auth::Principal& reader, const std::string& exam_id);
  //! The exam's objects, for the holder of its live claim only.
  absl::StatusOr<std::vector<storage::ObjectRecord>> OpenForFetch(const auth::Principal& reader,
                                                                  const std::string& exam_id);
  //! Returns expired leases' exams to their queues; returns how many.
  absl::StatusOr<int> ExpireLeases();

  //! The claim holder moves the exam to the consultation queue of the next level up.
  absl::StatusOr<storage::ExamRecord> Escalate(const auth::Principal& reader,
                                               const std::string& exam_id,
                                               const std::string& reason);
  //! Escalates every exam left unclaimed past its SLA claim target; returns how many moved.
  absl::StatusOr<int> EscalateOverdue();
  //! What a reader sees of a patient's history (mutual recognition of results).
  struct PriorsView {
    std::vector<storage::ExamRecord> priors;  //!< newest first; ECG/LAB exams: same type only
    //! LAB exams: this exam's results and earlier values of the same test codes (a trend).
    std::vector<storage::LabResultRecord> lab_results;
  };
  //! The same patient's other exams on the platform (identity::PatientLinker's rules); every
  //! prior shown is audited. For the reader holding the exam's live claim or who signed its
  //! report; anyone else of its queues only with a `break_glass_reason`, audited as
  //! "break_glass". PERMISSION_DENIED otherwise.
  absl::StatusOr<PriorsView> Priors(const auth::Principal& reader, const std::string& exam_id,
                                    const std::string& break_glass_reason = "");
  static constexpr size_t kMaxBreakGlassReason = 500;
  static constexpr size_t kMinBreakGlassReason = 4;
  //! The exam, for the reader working on it (ReadsExam), or for another reader of its queues who
  //! breaks the glass with a reason (audited "break_glass": "<what>: <reason>"). `what` names the
  //! data in the refusal ("priors", "reports"). PERMISSION_DENIED otherwise.
  absl::StatusOr<storage::ExamRecord> ExamInContextOfWork(const auth::Principal& reader,
                                                          const std::string& exam_id,
                                                          absl::string_view what,
                                                          const std::string& break_glass_reason);
  //! How long the author of a FINAL or addendum keeps access to the exam's priors and reports
  //! without a claim (to write an addendum).
  static constexpr absl::Duration kAuthorAccess = absl::Hours(72);

  absl::Duration lease() const { return lease_; }
  //! Queues a reader reads: those of their desks (config `desks`), or every queue of their
  //! institution when it has no desks; empty if none.
  const std::vector<std::string>& QueuesOf(const auth::Principal& reader) const;
  //! The desk at which `reader` reads `queue`: the first desk of the config that names both;
  //! empty when the reader's institution has no desks (or none of theirs reads the queue).
  std::string SigningDesk(const auth::Principal& reader, const std::string& queue) const;
  //! Queues served by an institution (empty if none).
  const std::vector<std::string>& InstitutionQueues(const std::string& institution) const;
  //! The exam if it sits in one of the reader's queues; NOT_FOUND otherwise (no existence leak).
  absl::StatusOr<storage::ExamRecord> ExamInReadersQueues(const auth::Principal& reader,
                                                          const std::string& exam_id);

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

  storage::IndexStore& index_;
  const routing::SlaTable& sla_;
  const Clock& clock_;
  identity::PatientLinker linker_{index_, clock_};
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
