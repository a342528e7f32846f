#include "gateway/auth/peer_identities.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/signing/revocation.h"

namespace rdg::auth {

std::shared_ptr<const PeerIdentities::Known> PeerIdentities::Lookup(absl::string_view pem) const {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = known_.find(pem); it != known_.end()) return it->second;
  }
  // Parsed outside the lock; two first calls of one certificate may both parse it.
  auto known = std::make_shared<Known>(
      Known{PrincipalFromCertificate(pem, directory_), signing::RevocationList::KeyOf(pem)});
  absl::MutexLock lock(&mu_);
  ++parsed_;
  if (known_.size() >= capacity_) known_.clear();
  known_.insert_or_assign(std::string(pem), known);
  return known;
}

absl::StatusOr<Principal> PeerIdentities::Resolve(absl::string_view pem) const {
  const std::shared_ptr<const Known> known = Lookup(pem);
  if (revocations_ != nullptr) {
    if (auto revoked = revocations_->RevokedAtKey(known->revocation_key); revoked.has_value()) {
      return absl::UnauthenticatedError(
          absl::StrCat("your certificate was revoked by the platform CA at ",
                       absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *revoked, absl::UTCTimeZone())));
    }
  }
  return known->principal;
}

int64_t PeerIdentities::parsed() const {
  absl::MutexLock lock(&mu_);
  return parsed_;
}

}  // namespace rdg::auth
