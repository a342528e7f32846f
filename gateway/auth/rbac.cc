#include "gateway/auth/rbac.h"

#include "absl/strings/str_cat.h"

namespace rdg::auth {

absl::Status Authorize(const Principal& principal, Permission permission) {
  bool granted = false;
  switch (permission) {
    case Permission::kUpload:
    case Permission::kListOwnExams:
    case Permission::kDownloadExam:
    case Permission::kReceiveReports:
      granted = principal.role == rdg::v1::CLINIC;  // clinics push exams in and see their own
      break;
    case Permission::kReadQueues:
      granted = principal.role == rdg::v1::READER;
      break;
    case Permission::kAdminister:
      granted = principal.role == rdg::v1::ADMIN;
      break;
  }
  if (granted) return absl::OkStatus();
  // Administrators see figures, not images: kAdminister is all they hold.
  return absl::PermissionDeniedError(
      absl::StrCat("role ", rdg::v1::Role_Name(principal.role), " may not use this operation"));
}

absl::Status AuthorizeExamAccess(const Principal& principal, const std::string& exam_id,
                                 const std::string& origin_institution) {
  if (principal.role == rdg::v1::CLINIC && principal.institution == origin_institution) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat("no exam ", exam_id, " for institution ", principal.institution));
}

}  // namespace rdg::auth
