// Who is calling: derived from the verified client certificate only, never from a request field.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/common.pb.h"
#include "storage/records.h"

namespace rdg::auth {

struct Principal {
  std::string institution;                         //!< certificate O
  rdg::v1::Role role = rdg::v1::ROLE_UNSPECIFIED;  //!< certificate OU
  std::string user;                                //!< certificate CN
  std::string subject = {};  //!< the certificate's whole subject, one RFC 2253 line
  std::string peer = {};     //!< the caller's address as gRPC names it ("ipv4:10.1.2.3:50122")
};

//! An audit record of `who` doing `action`: institution, user, role, address and certificate
//! subject all from the principal. The store adds the exam's patient (storage::AuditRecord).
storage::AuditRecord AuditBy(const Principal& who, absl::Time at, std::string action,
                             std::string exam_id = {}, std::string detail = {});

//! Whether a certificate of `role` may be issued to an institution of `level`: clinics are
//! villages, townships, communities and vans; readers county, city and province hospitals;
//! administrators anywhere.
bool RoleFitsLevel(rdg::v1::Role role, rdg::v1::InstitutionLevel level);

//! Maps a peer certificate (PEM, already verified against the platform CA by TLS) to a principal.
//! UNAUTHENTICATED if the certificate does not follow the profile or names an unknown
//! institution, or if the role does not fit the institution's level (e.g. a clinic certificate
//! issued for a county hospital).
absl::StatusOr<Principal> PrincipalFromCertificate(absl::string_view pem,
                                                   const config::InstitutionDirectory& directory);

}  // namespace rdg::auth
