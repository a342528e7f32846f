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
#include "rdg/v1/reading.pb.h"

namespace rdg::signing {

//! The GB/T 32918 default SM2 distinguishing identifier.
inline constexpr absl::string_view kSm2DistinguishingId = "1234567812345678";

class SignatureVerifier {
 public:
  //! `ca_pem`: the platform CA certificate(s).
  static absl::StatusOr<std::unique_ptr<SignatureVerifier>> Create(absl::string_view ca_pem);
  ~SignatureVerifier();

  //! Checks that `signature` over exactly `content` was made with the key of `signer_cert_pem`
  //! (for CMS: the certificate in its SignerInfo), that the certificate chained to the platform
  //! CA at `signed_at`, and that it is a signing certificate (digitalSignature and
  //! nonRepudiation key usage). Returns the signer's subject. INVALID_ARGUMENT for anything that
  //! does not verify (with the reason, never the content).
  absl::StatusOr<CertificateSubject> Verify(rdg::v1::SignatureFormat format,
                                            absl::string_view content, absl::string_view signature,
                                            absl::string_view signer_cert_pem,
                                            absl::Time signed_at) const;

 private:
  struct Impl;
  explicit SignatureVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdg::signing
