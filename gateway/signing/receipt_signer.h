// The gateway's own signature on what it vouches for (report receipts, proto/rdg/v1/
// report_canonical.h): a DER CMS detached signature with SHA-256 by the key of the gateway's TLS
// certificate, that certificate embedded, so anyone holding the platform CA can check it offline.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rdg::signing {

//! The seam the delivery service signs receipts through (unit tests:
//! tests/mocks/mock_receipt_signer.h).
class ReceiptSigner {
 public:
  virtual ~ReceiptSigner() = default;
  //! The DER CMS detached signature over exactly `content`. Safe from any thread.
  virtual absl::StatusOr<std::string> Sign(absl::string_view content) const = 0;
};

//! Signs with OpenSSL and the gateway's TLS key.
class CmsReceiptSigner final : public ReceiptSigner {
 public:
  //! `cert_pem` and `key_pem`: the gateway's certificate and its private key (tls.cert_file and
  //! tls.key_file). INVALID_ARGUMENT when they cannot be read or do not belong together.
  static absl::StatusOr<std::unique_ptr<CmsReceiptSigner>> Create(absl::string_view cert_pem,
                                                                  absl::string_view key_pem);
  ~CmsReceiptSigner() override;

  absl::StatusOr<std::string> Sign(absl::string_view content) const override;

 private:
  struct Impl;
  explicit CmsReceiptSigner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdg::signing
