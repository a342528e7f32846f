#include "clients/common/report_crypto.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>

namespace rdg::clients {
namespace {

constexpr char kSm2Id[] = "1234567812345678";

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;
using Key = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cms = std::unique_ptr<CMS_ContentInfo, Free<CMS_ContentInfo, CMS_ContentInfo_free>>;
using Store = std::unique_ptr<X509_STORE, Free<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX, X509_STORE_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX, EVP_MD_CTX_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;

Bio MemBio(const std::string& s) { return Bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size()))); }

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

std::string LastError() {
  char buf[256] = "unknown error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

//! An SM2 digest context with the GB/T distinguishing ID (sign or verify).
MdCtx Sm2Context(EVP_PKEY* key, bool sign) {
  MdCtx md(EVP_MD_CTX_new());
  PkeyCtx pctx(EVP_PKEY_CTX_new(key, nullptr));
  EVP_PKEY_CTX_set1_id(pctx.get(), kSm2Id, sizeof(kSm2Id) - 1);
  EVP_MD_CTX_set_pkey_ctx(md.get(), pctx.release());  // the digest context owns it now
  const int ok = sign ? EVP_DigestSignInit(md.get(), nullptr, EVP_sm3(), nullptr, key)
                      : EVP_DigestVerifyInit(md.get(), nullptr, EVP_sm3(), nullptr, key);
  return ok == 1 ? std::move(md) : MdCtx();
}

}  // namespace

bool SignReport(const std::string& canonical, const std::string& key_path,
                const std::string& cert_path, rdg::v1::ReportSignature* out, std::string* error) {
  std::string key_pem, cert_pem;
  if (!ReadText(key_path, &key_pem) || !ReadText(cert_path, &cert_pem)) {
    *error = "cannot read the signing key or certificate";
    return false;
  }
  Bio kb = MemBio(key_pem), cb = MemBio(cert_pem);
  Key key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  Cert cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!key || !cert) {
    *error = "the signing key or certificate is not PEM: " + LastError();
    return false;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    *error = "the signing key does not belong to the signing certificate";
    return false;
  }
  out->set_signer_certificate_pem(cert_pem);
  if (EVP_PKEY_is_a(key.get(), "SM2")) {
    MdCtx md = Sm2Context(key.get(), /*sign=*/true);
    size_t len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(canonical.data());
    if (!md || EVP_DigestSign(md.get(), nullptr, &len, data, canonical.size()) != 1) {
      *error = "SM2 signing failed: " + LastError();
      return false;
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                       canonical.size()) != 1) {
      *error = "SM2 signing failed: " + LastError();
      return false;
    }
    sig.resize(len);
    out->set_format(rdg::v1::SM2_SM3_RAW);
    out->set_signature(sig);
    return true;
  }
  Bio content = MemBio(canonical);
  const int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
  Cms cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
  if (!cms || !CMS_add1_signer(cms.get(), cert.get(), key.get(), EVP_sha256(), flags) ||
      CMS_final(cms.get(), content.get(), nullptr, flags) != 1) {
    *error = "CMS signing failed: " + LastError();
    return false;
  }
  Bio der(BIO_new(BIO_s_mem()));
  i2d_CMS_bio(der.get(), cms.get());
  char* p = nullptr;
  long n = BIO_get_mem_data(der.get(), &p);
  out->set_format(rdg::v1::CMS_DETACHED_ECDSA_SHA256);
  out->set_signature(std::string(p, static_cast<size_t>(n)));
  return true;
}

bool VerifyReport(const rdg::v1::ReportVersion& report, const std::string& ca_path,
                  std::string* detail) {
  std::string ca_pem;
  if (!ReadText(ca_path, &ca_pem)) {
    *detail = "cannot read the CA certificate " + ca_path;
    return false;
  }
  const auto& sig = report.signature();
  if (sig.signature().empty()) {
    *detail = "the report is not signed";
    return false;
  }
  Store store(X509_STORE_new());
  Bio cab = MemBio(ca_pem);
  while (X509* ca = PEM_read_bio_X509(cab.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), ca);
    X509_free(ca);
  }
  ERR_clear_error();
  X509_STORE_set_purpose(store.get(), X509_PURPOSE_ANY);
  Bio sb = MemBio(sig.signer_certificate_pem());
  Cert signer(PEM_read_bio_X509(sb.get(), nullptr, nullptr, nullptr));
  if (!signer) {
    *detail = "the signer certificate is unreadable";
    return false;
  }
  StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), signer.get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    *detail = std::string("the signer certificate does not chain to the platform CA: ") +
              X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    return false;
  }
  const std::string& content = report.canonical_bytes();
  bool ok = false;
  if (sig.format() == rdg::v1::SM2_SM3_RAW) {
    MdCtx md = Sm2Context(X509_get0_pubkey(signer.get()), /*sign=*/false);
    ok = md && EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig.signature().data()),
                                sig.signature().size(),
                                reinterpret_cast<const unsigned char*>(content.data()),
                                content.size()) == 1;
  } else {
    Bio in = MemBio(sig.signature());
    Cms cms(d2i_CMS_bio(in.get(), nullptr));
    Bio data = MemBio(content);
    ok = cms && CMS_verify(cms.get(), nullptr, store.get(), data.get(), nullptr, CMS_BINARY) == 1;
  }
  if (!ok) {
    *detail = "the signature does not match the report: " + LastError();
    return false;
  }
  char name[256];
  X509_NAME_oneline(X509_get_subject_name(signer.get()), name, sizeof(name));
  *detail = std::string("signed by ") + name;
  return true;
}

std::string CertificateFingerprint(const std::string& pem) {
  Bio b = MemBio(pem);
  Cert cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!cert || X509_digest(cert.get(), EVP_sha256(), md, &length) != 1) return "";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    if (i > 0) out += ':';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

bool CertificateIdentity(const std::string& cert_path, std::string* institution,
                         std::string* user, std::string* error) {
  std::string pem;
  if (!ReadText(cert_path, &pem)) {
    *error = "cannot read certificate " + cert_path;
    return false;
  }
  Bio b = MemBio(pem);
  Cert cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    *error = "not a PEM certificate: " + cert_path;
    return false;
  }
  char buf[256];
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_get_text_by_NID(subject, NID_organizationName, buf, sizeof(buf)) < 0) buf[0] = 0;
  *institution = buf;
  if (X509_NAME_get_text_by_NID(subject, NID_commonName, buf, sizeof(buf)) < 0) buf[0] = 0;
  *user = buf;
  return true;
}

}  // namespace rdg::clients
