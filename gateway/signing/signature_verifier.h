// The seam through which the report desk checks a reader's signature on a report. The gateway's
// implementation is CmsSignatureVerifier (report_signature.h, OpenSSL); unit tests use
// tests/mocks/mock_signature_verifier.h.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/signing/certificate.h"
#include "rdg/v1/reading.pb.h"

namespace rdg::signing {

class SignatureVerifier {
 public:
  virtual ~SignatureVerifier() = default;

  //! Checks that `signature` over exactly `content` was made with the key of `signer_cert_pem`
  //! (for CMS: the certificate in its SignerInfo), that the certificate chained to the platform
  //! CA at `signed_at`, and that it is a signing certificate (digitalSignature and
  //! nonRepudiation key usage). Returns the signer's subject. INVALID_ARGUMENT for anything that
  //! does not verify (with the reason, never the content). Thread-safe.
  virtual absl::StatusOr<CertificateSubject> Verify(rdg::v1::SignatureFormat format,
                                                    absl::string_view content,
                                                    absl::string_view signature,
                                                    absl::string_view signer_cert_pem,
                                                    absl::Time signed_at) const = 0;
};

}  // namespace rdg::signing
