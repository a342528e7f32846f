// gMock of signing::ReceiptSigner: the delivery service's tests choose what signing answers.
#pragma once

#include <gmock/gmock.h>

#include "gateway/signing/receipt_signer.h"

namespace rdg::signing {

class MockReceiptSigner : public ReceiptSigner {
 public:
  MOCK_METHOD(absl::StatusOr<std::string>, Sign, (absl::string_view), (const, override));
};

}  // namespace rdg::signing
