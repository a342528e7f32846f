#include "gateway/worklist/reading_desk.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gateway/auth/rbac.h"
#include "storage/status_macros.h"

namespace rdg::worklist {

ReadingDesk::ReadingDesk(const rdg::v1::GatewayConfig& config, storage::IndexStore& index,
                         const Clock& clock)
    : index_(index), clock_(clock), lease_(absl::Seconds(config.claims().lease_seconds())) {
  for (const auto& q : config.queues()) queues_of_[q.institution()].push_back(q.name());
}

const std::vector<std::string>& ReadingDesk::QueuesOf(const std::string& institution) const {
  static const std::vector<std::string> kNone;
  auto it = queues_of_.find(institution);
  return it == queues_of_.end() ? kNone : it->second;
}

absl::Status ReadingDesk::Audit(const auth::Principal& who, const std::string& action,
                                const std::string& exam_id, const std::string& detail) {
  return index_.AppendAudit(
      {0, clock_.Now(), who.institution, who.user, who.role, action, exam_id, detail});
}

absl::StatusOr<storage::ExamRecord> ReadingDesk::ExamInReadersQueues(
    const auth::Principal& reader, const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(auth::Authorize(reader, auth::Permission::kReadQueues));
  RDG_ASSIGN_OR_RETURN(auto exam, index_.GetExam(exam_id));
  const auto& mine = QueuesOf(reader.institution);
  if (!exam.has_value() || std::find(mine.begin(), mine.end(), exam->queue) == mine.end()) {
    return absl::NotFoundError(
        absl::StrCat("no exam ", exam_id, " in the queues of ", reader.institution));
  }
  return *std::move(exam);
}

absl::StatusOr<storage::WorklistPage> ReadingDesk::Worklist(const auth::Principal& reader,
                                                            storage::WorklistQuery filter) {
  RDG_RETURN_IF_ERROR(auth::Authorize(reader, auth::Permission::kReadQueues));
  filter.queues = QueuesOf(reader.institution);
  if (filter.queues.empty()) return storage::WorklistPage{};
  RDG_ASSIGN_OR_RETURN(auto page, index_.ListWorklist(filter, clock_.Now()));
  RDG_RETURN_IF_ERROR(Audit(reader, "worklist", "", absl::StrCat(page.entries.size(), " exams")));
  return page;
}

absl::StatusOr<storage::ClaimRecord> ReadingDesk::Claim(const auth::Principal& reader,
                                                        const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  RDG_ASSIGN_OR_RETURN(auto claim, index_.ClaimExam(exam_id, reader.user, reader.institution,
                                                    clock_.Now(), lease_,
                                                    storage::ClaimAction::kClaim));
  RDG_RETURN_IF_ERROR(Audit(reader, "claim_exam", exam_id, ""));
  return claim;
}

absl::StatusOr<storage::ClaimRecord> ReadingDesk::Renew(const auth::Principal& reader,
                                                        const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  return index_.ClaimExam(exam_id, reader.user, reader.institution, clock_.Now(), lease_,
                          storage::ClaimAction::kRenew);
}

absl::Status ReadingDesk::Release(const auth::Principal& reader, const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  return index_.ReleaseClaim(exam_id, reader.user, clock_.Now());
}

absl::StatusOr<std::vector<storage::ObjectRecord>> ReadingDesk::OpenForFetch(
    const auth::Principal& reader, const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  RDG_ASSIGN_OR_RETURN(auto claim, index_.GetLiveClaim(exam_id, clock_.Now()));
  if (!claim.has_value() || claim->holder_user != reader.user) {
    return absl::FailedPreconditionError(
        absl::StrCat("claim exam ", exam_id, " before fetching it (only the claim holder may)"));
  }
  RDG_RETURN_IF_ERROR(Audit(reader, "fetch_exam", exam_id, ""));
  return index_.ListObjects(exam_id);
}

absl::StatusOr<int> ReadingDesk::ExpireLeases() { return index_.ExpireClaims(clock_.Now()); }

}  // namespace rdg::worklist
