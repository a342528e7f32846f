#include "gateway/signing/receipt_signer.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "storage/base/openssl_support.h"

namespace rdg::signing {

using openssl::MemBio;
using openssl::OpenSslError;

struct CmsReceiptSigner::Impl {
  openssl::X509Ptr cert;
  openssl::PkeyPtr key;
};

CmsReceiptSigner::CmsReceiptSigner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CmsReceiptSigner::~CmsReceiptSigner() = default;

absl::StatusOr<std::unique_ptr<CmsReceiptSigner>> CmsReceiptSigner::Create(
    absl::string_view cert_pem, absl::string_view key_pem) {
  auto impl = std::make_unique<Impl>();
  openssl::BioPtr cert_bio = MemBio(cert_pem);
  impl->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  openssl::BioPtr key_bio = MemBio(key_pem);
  impl->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (impl->cert == nullptr || impl->key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the gateway's certificate or key cannot be read: ", OpenSslError()));
  }
  if (X509_check_private_key(impl->cert.get(), impl->key.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the gateway's key does not belong to its certificate: ", OpenSslError()));
  }
  return std::unique_ptr<CmsReceiptSigner>(new CmsReceiptSigner(std::move(impl)));
}

absl::StatusOr<std::string> CmsReceiptSigner::Sign(absl::string_view content) const {
  openssl::BioPtr data = MemBio(content);
  openssl::CmsPtr cms(CMS_sign(impl_->cert.get(), impl_->key.get(), nullptr, data.get(),
                               CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP));
  if (!cms) return absl::InternalError(absl::StrCat("CMS_sign: ", OpenSslError()));
  unsigned char* der = nullptr;
  const int size = i2d_CMS_ContentInfo(cms.get(), &der);
  if (size <= 0) return absl::InternalError(absl::StrCat("CMS encoding: ", OpenSslError()));
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

}  // namespace rdg::signing
