// Who is calling: the principal of a call's verified TLS peer certificate, with the revocation
// list asked on every call. Each distinct certificate is parsed once: decoding a PEM certificate
// with OpenSSL 3 twice per call (profile and revocation key) was a quarter of the gateway's CPU
// when clinics upload small objects, one call each.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "gateway/auth/principal.h"
#include "gateway/config/institution_directory.h"

namespace rdg::signing {
class RevocationList;
}  // namespace rdg::signing

namespace rdg::auth {

class PeerIdentities {
 public:
  //! `revocations` (may be null): a certificate revoked since its connection was made is refused
  //! on its next call. At most `capacity` certificates are remembered; when a new one does not
  //! fit, all are forgotten and parsed again as they call.
  PeerIdentities(const config::InstitutionDirectory& directory,
                 signing::RevocationList* revocations, size_t capacity = 4096)
      : directory_(directory), revocations_(revocations), capacity_(capacity) {}

  //! The principal of a peer certificate (PEM) that TLS verified against the platform CA:
  //! UNAUTHENTICATED if it is revoked now or does not follow the certificate profile
  //! (auth::PrincipalFromCertificate). `peer` is left empty.
  absl::StatusOr<Principal> Resolve(absl::string_view pem) const ABSL_LOCKS_EXCLUDED(mu_);

  //! Certificates parsed so far (each distinct one once while it is remembered).
  int64_t parsed() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  //! What a certificate says, worked out once.
  struct Known {
    absl::StatusOr<Principal> principal;
    std::string revocation_key;  //!< signing::RevocationList::KeyOf
  };
  std::shared_ptr<const Known> Lookup(absl::string_view pem) const ABSL_LOCKS_EXCLUDED(mu_);

  const config::InstitutionDirectory& directory_;
  signing::RevocationList* const revocations_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const Known>> known_
      ABSL_GUARDED_BY(mu_);
  mutable int64_t parsed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rdg::auth
