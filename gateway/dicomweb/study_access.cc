#include "gateway/dicomweb/study_access.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gateway/auth/rbac.h"
#include "storage/base/status_macros.h"

namespace rdg::dicomweb {
namespace {

absl::Status NoSuchStudy(const std::string& study) {
  return absl::NotFoundError(absl::StrCat("no study ", study));
}

}  // namespace

absl::StatusOr<std::vector<StudyAccess::Found>> StudyAccess::Searchable(const auth::Principal& who,
                                                                        size_t max,
                                                                        absl::string_view what,
                                                                        bool with_priors) {
  std::vector<Found> out;
  if (who.role == rdg::v1::CLINIC) {
    RDG_RETURN_IF_ERROR(auth::Authorize(who, auth::Permission::kListOwnExams));
    storage::ExamQuery query;
    query.origin_institution = who.institution;
    query.limit = 1000;
    do {
      RDG_ASSIGN_OR_RETURN(storage::ExamPage page, stores_.exams.ListExams(query));
      for (auto& e : page.exams) {
        if (out.size() < max) out.push_back({std::move(e), /*open=*/true});
      }
      query.before_seq = page.next_before_seq;
    } while (query.before_seq > 0 && out.size() < max);
  } else {
    RDG_RETURN_IF_ERROR(auth::Authorize(who, auth::Permission::kReadQueues));
    storage::WorklistQuery query;
    query.limit = 1000;
    const absl::Time now = clock_.Now();
    std::vector<std::string> claimed;
    do {
      RDG_ASSIGN_OR_RETURN(storage::WorklistPage page, desk_.Worklist(who, query));
      for (auto& entry : page.entries) {
        // The exams whose live claim the reader holds are open to them (as fetch).
        const bool mine = entry.claim.has_value() && entry.claim->holder_user == who.user &&
                          entry.claim->holder_institution == who.institution &&
                          entry.claim->expires_at > now;
        if (mine) claimed.push_back(entry.exam.exam_id);
        if (out.size() < max) out.push_back({std::move(entry.exam), mine});
      }
      query.after = page.next_cursor;
    } while (!query.after.empty() && out.size() < max);
    // The priors of what they work on, as rdg-reader priors lists them (each audited
    // "view_prior"): found at study level; their images stay with their own claims.
    for (const std::string& exam_id : with_priors ? claimed : std::vector<std::string>{}) {
      absl::StatusOr<worklist::ReadingDesk::PriorsView> priors = desk_.Priors(who, exam_id, "");
      if (absl::IsPermissionDenied(priors.status()) || absl::IsNotFound(priors.status())) {
        continue;  // the claim ended meanwhile
      }
      if (!priors.ok()) return priors.status();
      for (storage::ExamRecord& prior : priors->priors) {
        const bool listed = std::any_of(out.begin(), out.end(), [&](const Found& f) {
          return f.exam.exam_id == prior.exam_id;
        });
        if (!listed && out.size() < max) out.push_back({std::move(prior), /*open=*/false});
      }
    }
  }
  RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
      auth::AuditBy(who, clock_.Now(), "dicomweb_search", "", std::string(what))));
  return out;
}

absl::StatusOr<storage::ExamRecord> StudyAccess::Open(const auth::Principal& who,
                                                      const std::string& study_instance_uid,
                                                      absl::string_view action) {
  RDG_ASSIGN_OR_RETURN(auto exams, stores_.exams.FindExamsByStudy(study_instance_uid));
  // A reader's exam in their queues that they do not work on is refused with the reason (claim
  // it first); any other study is not there for them.
  absl::Status refusal = NoSuchStudy(study_instance_uid);
  for (const storage::ExamRecord& exam : exams) {
    absl::Status allowed;
    if (who.role == rdg::v1::CLINIC) {
      allowed = auth::Authorize(who, auth::Permission::kDownloadExam);
      if (allowed.ok()) {
        allowed = auth::AuthorizeExamAccess(who, exam.exam_id, exam.origin_institution);
      }
    } else {
      allowed = auth::Authorize(who, auth::Permission::kReadQueues);
      // As rdg-reader fetch: the holder of the exam's live claim only.
      if (allowed.ok()) allowed = desk_.OpenForFetch(who, exam.exam_id).status();
      if (absl::IsFailedPrecondition(allowed)) {
        allowed = absl::PermissionDeniedError(allowed.message());
      }
    }
    if (absl::IsPermissionDenied(allowed)) refusal = allowed;
    if (!allowed.ok()) continue;
    RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
        auth::AuditBy(who, clock_.Now(), std::string(action), exam.exam_id, "")));
    return exam;
  }
  if (who.role != rdg::v1::CLINIC) {
    RDG_RETURN_IF_ERROR(auth::Authorize(who, auth::Permission::kReadQueues));
  }
  return refusal;
}

}  // namespace rdg::dicomweb
