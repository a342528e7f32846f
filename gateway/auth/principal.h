// Who is calling: derived from the verified client certificate only, never from a request field.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/common.pb.h"

namespace rdg::auth {

struct Principal {
  std::string institution;                         //!< certificate O
  rdg::v1::Role role = rdg::v1::ROLE_UNSPECIFIED;  //!< certificate OU
  std::string user;                                //!< certificate CN
};

//! Maps a peer certificate (PEM, already verified against the platform CA by TLS) to a principal.
//! UNAUTHENTICATED if the certificate does not follow the profile or names an unknown
//! institution, or if the role does not fit the institution's level (e.g. a clinic certificate
//! issued for a county hospital).
absl::StatusOr<Principal> PrincipalFromCertificate(absl::string_view pem,
                                                   const config::InstitutionDirectory& directory);

}  // namespace rdg::auth
