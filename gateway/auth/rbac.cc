#include "gateway/auth/rbac.h"

#include "absl/strings/str_cat.h"

namespace rdg::auth {

absl::Status Authorize(const Principal& principal, Permission permission) {
  static_cast<void>(permission);  // every permission so far is a clinic permission
  // Clinics push exams in and see their own. Readers and administrators are granted their
  // permissions by the reading-workflow and administration features; until then, refused.
  switch (principal.role) {
    case rdg::v1::CLINIC:
      return absl::OkStatus();
    case rdg::v1::READER:
    case rdg::v1::ADMIN:
    default:
      return absl::PermissionDeniedError(absl::StrCat(
          "role ", rdg::v1::Role_Name(principal.role),
          " may not use this operation: uploads and exam downloads are for clinic certificates"));
  }
}

absl::Status AuthorizeExamAccess(const Principal& principal, const std::string& exam_id,
                                 const std::string& origin_institution) {
  if (principal.role == rdg::v1::CLINIC && principal.institution == origin_institution) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no exam ", exam_id, " for institution ",
                                          principal.institution));
}

}  // namespace rdg::auth
