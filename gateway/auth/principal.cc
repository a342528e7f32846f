#include "gateway/auth/principal.h"

#include "absl/strings/str_cat.h"
#include "gateway/signing/certificate.h"
#include "storage/vocabulary_proto.h"

namespace rdg::auth {

bool RoleFitsLevel(rdg::v1::Role role, rdg::v1::InstitutionLevel level) {
  switch (role) {
    case rdg::v1::CLINIC:
      return level == rdg::v1::VILLAGE || level == rdg::v1::TOWNSHIP ||
             level == rdg::v1::COMMUNITY || level == rdg::v1::MOBILE_VAN;
    case rdg::v1::READER:
      return level == rdg::v1::COUNTY || level == rdg::v1::CITY || level == rdg::v1::PROVINCE;
    case rdg::v1::ADMIN:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<Principal> PrincipalFromCertificate(absl::string_view pem,
                                                   const config::InstitutionDirectory& directory) {
  auto subject = signing::ParseCertificateSubject(pem);
  if (!subject.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate unusable: ", subject.status().message()));
  }
  Principal p;
  p.institution = subject->organization;
  p.user = subject->common_name;
  p.subject = subject->distinguished_name;
  const std::string& ou = subject->organizational_unit;
  if (ou == "clinic") {
    p.role = rdg::v1::CLINIC;
  } else if (ou == "reader") {
    p.role = rdg::v1::READER;
  } else if (ou == "admin") {
    p.role = rdg::v1::ADMIN;
  } else {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate OU must be clinic, reader or admin (got \"", ou, "\")"));
  }
  if (p.user.empty()) return absl::UnauthenticatedError("client certificate has no CN (user)");
  const auto* inst = directory.Find(p.institution);
  if (inst == nullptr) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate names institution \"", p.institution,
                     "\", which this gateway's configuration does not know"));
  }
  if (!RoleFitsLevel(p.role, inst->level())) {
    return absl::PermissionDeniedError(absl::StrCat("role ", ou, " is not valid for institution \"",
                                                    p.institution, "\" at its level"));
  }
  return p;
}

storage::AuditRecord AuditBy(const Principal& who, absl::Time at, std::string action,
                             std::string exam_id, std::string detail) {
  storage::AuditRecord r =
      storage::AuditOf(at, who.institution, who.user, storage::FromProto(who.role),
                       std::move(action), std::move(exam_id), std::move(detail));
  r.subject = who.subject;
  r.peer = who.peer;
  return r;
}

}  // namespace rdg::auth
