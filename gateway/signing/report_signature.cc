#include "gateway/signing/report_signature.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "storage/base/openssl_support.h"

namespace rdg::signing {
namespace {

using openssl::BioPtr;
using openssl::CmsPtr;
using openssl::MdCtxPtr;
using openssl::MemBio;
using openssl::OpenSslError;
using openssl::PkeyCtxPtr;
using openssl::StoreCtxPtr;
using openssl::X509Ptr;

bool SameCertificate(X509* a, X509* b) { return X509_cmp(a, b) == 0; }

}  // namespace

struct CmsSignatureVerifier::Impl {
  X509_STORE* store = X509_STORE_new();
  RevocationList* revocations = nullptr;
  ~Impl() { X509_STORE_free(store); }

  absl::Status VerifyChain(X509* cert, absl::Time at) const {
    StoreCtxPtr ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), store, cert, nullptr);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(at));
    if (X509_verify_cert(ctx.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the signer certificate was not valid under the platform CA when the report was "
          "signed (",
          X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())), ")"));
    }
    // A signing certificate: what a reader signs with cannot be a transport-only key. (Without
    // the extension OpenSSL reports every usage: its absence is refused too.)
    const bool has_usage = (X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0;
    const uint32_t usage = X509_get_key_usage(cert);
    if (!has_usage || (usage & KU_DIGITAL_SIGNATURE) == 0 || (usage & KU_NON_REPUDIATION) == 0) {
      return absl::InvalidArgumentError(
          "the signer certificate lacks the digitalSignature and nonRepudiation key usage of a "
          "signing certificate");
    }
    return absl::OkStatus();
  }

  absl::Status VerifyCms(absl::string_view content, absl::string_view der, X509* signer) const {
    BioPtr in = MemBio(der);
    CmsPtr cms(d2i_CMS_bio(in.get(), nullptr));
    if (!cms) return absl::InvalidArgumentError("the signature is not a DER CMS SignedData");
    BioPtr data = MemBio(content);
    if (CMS_verify(cms.get(), nullptr, store, data.get(), nullptr, CMS_BINARY) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("the CMS signature does not verify (", OpenSslError(), ")"));
    }
    STACK_OF(X509)* signers = CMS_get0_signers(cms.get());
    const bool matches = signers != nullptr && sk_X509_num(signers) == 1 &&
                         SameCertificate(sk_X509_value(signers, 0), signer);
    sk_X509_free(signers);
    if (!matches) {
      return absl::InvalidArgumentError(
          "the CMS signature was not made by the submitted signer certificate");
    }
    return absl::OkStatus();
  }

  absl::Status VerifySm2(absl::string_view content, absl::string_view signature,
                         X509* signer) const {
    EVP_PKEY* key = X509_get0_pubkey(signer);
    if (key == nullptr || !EVP_PKEY_is_a(key, "SM2")) {
      return absl::InvalidArgumentError(
          "format SM2_SM3_RAW needs a signer certificate with an SM2 key");
    }
    MdCtxPtr md(EVP_MD_CTX_new());
    PkeyCtxPtr pctx(EVP_PKEY_CTX_new(key, nullptr));
    if (EVP_PKEY_CTX_set1_id(pctx.get(), kSm2DistinguishingId.data(),
                             kSm2DistinguishingId.size()) != 1) {
      return absl::InternalError(absl::StrCat("SM2 set id: ", OpenSslError()));
    }
    EVP_MD_CTX_set_pkey_ctx(md.get(), pctx.get());
    const bool ok =
        EVP_DigestVerifyInit(md.get(), nullptr, EVP_sm3(), nullptr, key) == 1 &&
        EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), reinterpret_cast<const unsigned char*>(content.data()),
                         content.size()) == 1;
    ERR_clear_error();
    if (!ok) return absl::InvalidArgumentError("the SM2 signature does not verify");
    return absl::OkStatus();
  }
};

CmsSignatureVerifier::CmsSignatureVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CmsSignatureVerifier::~CmsSignatureVerifier() = default;

absl::StatusOr<std::unique_ptr<CmsSignatureVerifier>> CmsSignatureVerifier::Create(
    absl::string_view ca_pem, RevocationList* revocations) {
  auto impl = std::make_unique<Impl>();
  impl->revocations = revocations;
  BioPtr bio = MemBio(ca_pem);
  int added = 0;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(impl->store, ca);
    X509_free(ca);
    ++added;
  }
  ERR_clear_error();
  if (added == 0) return absl::InvalidArgumentError("no CA certificate in the platform CA file");
  // Reader certificates carry clientAuth and emailProtection; signing is checked by the chain to
  // the platform CA and by the certificate profile, not by an extended-key-usage purpose.
  X509_STORE_set_purpose(impl->store, X509_PURPOSE_ANY);
  return std::unique_ptr<CmsSignatureVerifier>(new CmsSignatureVerifier(std::move(impl)));
}

absl::StatusOr<CertificateSubject> CmsSignatureVerifier::Verify(rdg::v1::SignatureFormat format,
                                                                absl::string_view content,
                                                                absl::string_view signature,
                                                                absl::string_view signer_cert_pem,
                                                                absl::Time signed_at) const {
  BioPtr bio = MemBio(signer_cert_pem);
  X509Ptr signer(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!signer) {
    ERR_clear_error();
    return absl::InvalidArgumentError("signer_certificate_pem is not a PEM certificate");
  }
  if (auto s = impl_->VerifyChain(signer.get(), signed_at); !s.ok()) return s;
  if (impl_->revocations != nullptr) {
    // A signature made before the revocation stays valid: the key was trusted then.
    if (auto revoked = impl_->revocations->RevokedAt(signer_cert_pem);
        revoked.has_value() && *revoked <= signed_at) {
      return absl::InvalidArgumentError(
          absl::StrCat("the signer's certificate was revoked at ",
                       absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *revoked, absl::UTCTimeZone()),
                       ", before this report's signed_at"));
    }
  }
  absl::Status verified;
  switch (format) {
    case rdg::v1::CMS_DETACHED_ECDSA_SHA256:
      verified = impl_->VerifyCms(content, signature, signer.get());
      break;
    case rdg::v1::SM2_SM3_RAW:
      verified = impl_->VerifySm2(content, signature, signer.get());
      break;
    default:
      verified = absl::InvalidArgumentError(
          "signature format must be CMS_DETACHED_ECDSA_SHA256 or SM2_SM3_RAW");
  }
  if (!verified.ok()) return verified;
  return ParseCertificateSubject(signer_cert_pem);
}

}  // namespace rdg::signing
