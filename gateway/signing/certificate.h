// X.509 certificate inspection (OpenSSL stays in gateway/signing/).
#pragma once

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rdg::signing {

//! The subject fields RDG's certificate profile uses (see README "Certificate profile").
struct CertificateSubject {
  std::string organization;         //!< O:  institution id
  std::string organizational_unit;  //!< OU: role (clinic, reader, admin)
  std::string common_name;          //!< CN: user
  //! The whole subject as one RFC 2253 line in UTF-8 ("CN=Li Wei,OU=reader,O=county-a"): what
  //! the audit log names the certificate by.
  std::string distinguished_name = {};
};

//! Reads the subject of the first certificate in `pem`. Each field must occur at most once.
absl::StatusOr<CertificateSubject> ParseCertificateSubject(absl::string_view pem);

//! A certificate's subject and end of validity.
struct CertificateValidity {
  std::string subject;  //!< RFC 2253, as SubjectLine
  absl::Time not_after;
};

//! Every certificate in `pem` (a chain or a CA bundle), in order; INVALID_ARGUMENT if none.
absl::StatusOr<std::vector<CertificateValidity>> CertificatesIn(absl::string_view pem);

//! The subject of the first certificate in `pem` as one RFC 2253 line, also when it does not
//! follow RDG's profile (a refused certificate is named by it); "" when `pem` holds none.
std::string SubjectLine(absl::string_view pem);

}  // namespace rdg::signing
