#include "gateway/dicomweb/study_access.h"

#include "absl/strings/str_cat.h"
#include "gateway/auth/rbac.h"
#include "storage/base/status_macros.h"

namespace rdg::dicomweb {
namespace {

absl::Status NoSuchStudy(const std::string& study) {
  return absl::NotFoundError(absl::StrCat("no study ", study));
}

}  // namespace

absl::StatusOr<std::vector<storage::ExamRecord>> StudyAccess::Searchable(const auth::Principal& who,
                                                                         size_t max,
                                                                         absl::string_view what) {
  std::vector<storage::ExamRecord> out;
  if (who.role == rdg::v1::CLINIC) {
    RDG_RETURN_IF_ERROR(auth::Authorize(who, auth::Permission::kListOwnExams));
    storage::ExamQuery query;
    query.origin_institution = who.institution;
    query.limit = 1000;
    do {
      RDG_ASSIGN_OR_RETURN(storage::ExamPage page, stores_.exams.ListExams(query));
      for (auto& e : page.exams) {
        if (out.size() < max) out.push_back(std::move(e));
      }
      query.before_seq = page.next_before_seq;
    } while (query.before_seq > 0 && out.size() < max);
  } else {
    RDG_RETURN_IF_ERROR(auth::Authorize(who, auth::Permission::kReadQueues));
    storage::WorklistQuery query;
    query.limit = 1000;
    do {
      RDG_ASSIGN_OR_RETURN(storage::WorklistPage page, desk_.Worklist(who, query));
      for (auto& entry : page.entries) {
        if (out.size() < max) out.push_back(std::move(entry.exam));
      }
      query.after = page.next_cursor;
    } while (!query.after.empty() && out.size() < max);
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
