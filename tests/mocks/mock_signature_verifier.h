// gMock of signing::SignatureVerifier, for the report desk's unit tests (which signer, which
// refusal) without certificates.
#pragma once

#include <gmock/gmock.h>

#include "gateway/signing/signature_verifier.h"

namespace rdg::signing {

class MockSignatureVerifier : public SignatureVerifier {
 public:
  MOCK_METHOD(absl::StatusOr<CertificateSubject>, Verify,
              (rdg::v1::SignatureFormat, absl::string_view, absl::string_view, absl::string_view,
               absl::Time),
              (const, override));
};

}  // namespace rdg::signing
