// Verification of report signatures made by readers' own keys: a CMS (PKCS#7) detached signature
// with ECDSA P-256 / SHA-256, or a plain SM2 signature with SM3 and the GB/T distinguishing ID
// "1234567812345678" (Debian's OpenSSL 3.0 cannot make an SM2 CMS). The signer certificate must
// chain to the platform CA.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/signing/certificate.h"
#include "gateway/signing/revocation.h"
#include "gateway/signing/signature_verifier.h"
#include "rdg/v1/reading.pb.h"

namespace rdg::signing {

//! The GB/T 32918 default SM2 distinguishing identifier.
inline constexpr absl::string_view kSm2DistinguishingId = "1234567812345678";

//! Verifies with OpenSSL against the platform CA (see SignatureVerifier::Verify).
class CmsSignatureVerifier final : public SignatureVerifier {
 public:
  //! `ca_pem`: the platform CA certificate(s). `revocations` (may be null; must outlive this):
  //! a signer revoked at or before the signature's signed_at is refused.
  static absl::StatusOr<std::unique_ptr<CmsSignatureVerifier>> Create(
      absl::string_view ca_pem, RevocationList* revocations = nullptr);
  ~CmsSignatureVerifier() override;

  absl::StatusOr<CertificateSubject> Verify(rdg::v1::SignatureFormat format,
                                            absl::string_view content, absl::string_view signature,
                                            absl::string_view signer_cert_pem,
                                            absl::Time signed_at) const override;

 private:
  struct Impl;
  explicit CmsSignatureVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdg::signing
