#include "clients/common/report_crypto.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "storage/base/openssl_support.h"
#include "storage/base/posix_file.h"

namespace rdg::clients {
namespace {

constexpr char kSm2Id[] = "1234567812345678";

using Bio = openssl::BioPtr;
using Cert = openssl::X509Ptr;
using Key = openssl::PkeyPtr;
using Cms = openssl::CmsPtr;
using Store = openssl::StorePtr;
using StoreCtx = openssl::StoreCtxPtr;
using MdCtx = openssl::MdCtxPtr;
using PkeyCtx = openssl::PkeyCtxPtr;
using openssl::MemBio;

bool ReadText(const std::string& path, std::string* out) {
  auto text = storage::ReadWholeFile(path, "");
  if (!text.ok()) return false;
  *out = *std::move(text);
  return true;
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
    *error = "the signing key or certificate is not PEM: " + openssl::OpenSslError();
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
      *error = "SM2 signing failed: " + openssl::OpenSslError();
      return false;
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                       canonical.size()) != 1) {
      *error = "SM2 signing failed: " + openssl::OpenSslError();
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
    *error = "CMS signing failed: " + openssl::OpenSslError();
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

namespace {

//! "key: value" lines after `header`, unescaped; empty when `text` does not start with it.
std::map<std::string, std::string> TextFields(const std::string& text, const char* header) {
  std::map<std::string, std::string> fields;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != header) return fields;
  while (std::getline(in, line)) {
    const size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string value;
    for (size_t i = colon + 2; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        const char e = line[++i];
        value += e == 'n' ? '\n' : e == 'r' ? '\r' : e;
      } else {
        value += line[i];
      }
    }
    fields.emplace(line.substr(0, colon), std::move(value));
  }
  return fields;
}

}  // namespace

std::map<std::string, std::string> CanonicalReportFields(const std::string& canonical) {
  return TextFields(canonical, "RDG-REPORT-V1");
}

std::map<std::string, std::string> ReceiptFields(const std::string& receipt) {
  return TextFields(receipt, "RDG-RECEIPT-V1");
}

namespace {

std::string SubjectField(X509* cert, int nid) {
  char buf[256];
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof(buf)) < 0) return "";
  return buf;
}

//! The certificate that made a CMS signature (from its SignerInfo), after checking the
//! signature over `content`; null with `detail` set when it does not verify.
Cert CmsSigner(const std::string& signature, const std::string& content, X509_STORE* store,
               const char* content_name, std::string* detail) {
  Bio in = MemBio(signature);
  Cms cms(d2i_CMS_bio(in.get(), nullptr));
  if (!cms) {
    *detail = "the signature is not a DER CMS SignedData";
    return Cert();
  }
  Bio data = MemBio(content);
  // The chain is checked separately, at signed_at; here: the signature over these bytes.
  if (CMS_verify(cms.get(), nullptr, store, data.get(), nullptr,
                 CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
    *detail = std::string("the signature does not match ") + content_name + ": " +
              openssl::OpenSslError();
    return Cert();
  }
  STACK_OF(X509)* signers = CMS_get0_signers(cms.get());
  Cert signer;
  if (signers != nullptr && sk_X509_num(signers) == 1) {
    X509* only = sk_X509_value(signers, 0);
    X509_up_ref(only);
    signer.reset(only);
  }
  sk_X509_free(signers);
  if (!signer) *detail = "the signature names no single signer";
  return signer;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

//! The platform CA's certificates as a trust store; null with `detail` set when unreadable.
Store CaStore(const std::string& ca_path, std::string* detail);
bool ChainsAt(X509_STORE* store, X509* cert, absl::Time at, std::string* detail);

//! A DER CMS signature over exactly `content` by a certificate with OU=gateway that chained to
//! the CA at `at`. `file`: the content's name in messages, `what`: what it is.
bool GatewaySigned(const std::string& content, const std::string& signature, X509_STORE* store,
                   absl::Time at, const std::string& file, const std::string& what,
                   std::string* detail) {
  std::string why;
  Cert gateway = CmsSigner(signature, content, store, file.c_str(), &why);
  if (!gateway) {
    *detail = "the gateway's " + what + ": " + why;
    return false;
  }
  if (!ChainsAt(store, gateway.get(), at, &why)) {
    *detail = "the " + what + "'s signer does not chain to the platform CA at " + Rfc3339(at) +
              ": " + why;
    return false;
  }
  const std::string ou = SubjectField(gateway.get(), NID_organizationalUnitName);
  if (ou != "gateway") {
    *detail = "the " + what + " is signed by a " + (ou.empty() ? std::string("role-less") : ou) +
              " certificate (" + SubjectField(gateway.get(), NID_commonName) +
              "), not the gateway's";
    return false;
  }
  return true;
}

Store CaStore(const std::string& ca_path, std::string* detail) {
  std::string ca_pem;
  if (!ReadText(ca_path, &ca_pem)) {
    *detail = "cannot read the CA certificate " + ca_path;
    return Store();
  }
  Store store(X509_STORE_new());
  Bio cab = MemBio(ca_pem);
  while (X509* ca = PEM_read_bio_X509(cab.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), ca);
    X509_free(ca);
  }
  ERR_clear_error();
  return store;
}

//! Whether `cert` chained to the CA at `at` (any purpose); else `detail` says why.
bool ChainsAt(X509_STORE* store, X509* cert, absl::Time at, std::string* detail) {
  StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store, cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_ANY);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(at));
  if (X509_verify_cert(ctx.get()) == 1) return true;
  *detail = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  return false;
}

//! The certificate that made `signature` over `canonical`: SM2 against signer.pem's key, CMS
//! against the certificate in the signature (signer.pem, when given, must be that one).
Cert SignerOf(const std::string& canonical, rdg::v1::SignatureFormat format,
              const std::string& signature, const std::string& signer_pem, X509_STORE* store,
              std::string* detail) {
  Bio sb = MemBio(signer_pem);
  Cert given(PEM_read_bio_X509(sb.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  Cert signer;
  if (format == rdg::v1::SM2_SM3_RAW) {
    if (!given) {
      *detail = "signer.pem holds no certificate (an SM2 signature needs it)";
      return nullptr;
    }
    EVP_PKEY* key = X509_get0_pubkey(given.get());
    if (key == nullptr || !EVP_PKEY_is_a(key, "SM2")) {
      *detail = "an SM2 signature needs a signer certificate with an SM2 key (signer.pem has none)";
      return nullptr;
    }
    MdCtx md = Sm2Context(key, /*sign=*/false);
    const bool ok =
        md &&
        EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), reinterpret_cast<const unsigned char*>(canonical.data()),
                         canonical.size()) == 1;
    if (!ok) {
      *detail = "the SM2 signature does not match report.txt with signer.pem's key: " +
                openssl::OpenSslError();
      return nullptr;
    }
    signer = std::move(given);
  } else {
    signer = CmsSigner(signature, canonical, store, "report.txt", detail);
    if (!signer) return nullptr;
    if (given && X509_cmp(given.get(), signer.get()) != 0) {
      *detail =
          "signer.pem is not the certificate that made the signature (the signature's own "
          "signer, " +
          SubjectField(signer.get(), NID_commonName) + ", is what counts)";
      return nullptr;
    }
  }
  return signer;
}

//! A reader's signing certificate: OU=reader, digitalSignature and nonRepudiation key usage.
bool IsReadersSigningCertificate(X509* signer, std::string* detail) {
  const std::string ou = SubjectField(signer, NID_organizationalUnitName);
  const std::string o = SubjectField(signer, NID_organizationName);
  const std::string cn = SubjectField(signer, NID_commonName);
  if (ou != "reader") {
    *detail = "signed by a " + (ou.empty() ? std::string("role-less") : ou) + " certificate (" +
              cn + " of " + o + "), not a reader's";
    return false;
  }
  // Without the extension OpenSSL reports every usage: its absence is refused too.
  const bool has_usage = (X509_get_extension_flags(signer) & EXFLAG_KUSAGE) != 0;
  const uint32_t usage = X509_get_key_usage(signer);
  if (!has_usage || (usage & KU_DIGITAL_SIGNATURE) == 0 || (usage & KU_NON_REPUDIATION) == 0) {
    *detail = "the signer certificate of " + cn +
              " lacks the digitalSignature and nonRepudiation "
              "key usage of a signing certificate";
    return false;
  }
  return true;
}

//! The signed text is a FINAL or an addendum, for the exam, by the signer, at the desk and time
//! the gateway's receipt names.
bool MatchesExpectations(const std::map<std::string, std::string>& fields, const std::string& cn,
                         const std::string& o, absl::Time signed_at,
                         const ReportExpectations& expect, std::string* detail) {
  const std::string status = fields.count("status") ? fields.at("status") : "";
  if (status != "FINAL_REPORT" && status != "AMENDED_REPORT") {
    *detail = "the signed text is a " + (status.empty() ? std::string("status-less") : status) +
              ", not a FINAL_REPORT or AMENDED_REPORT";
    return false;
  }
  if (!expect.exam_id.empty() &&
      (!fields.count("exam_id") || fields.at("exam_id") != expect.exam_id)) {
    *detail = "the report is for exam " +
              (fields.count("exam_id") ? fields.at("exam_id") : "(none)") + ", not " +
              expect.exam_id;
    return false;
  }
  const std::string user = fields.count("reader_user") ? fields.at("reader_user") : "";
  const std::string institution =
      fields.count("reader_institution") ? fields.at("reader_institution") : "";
  if (user != cn || institution != o) {
    *detail = "the report names reader " + user + " of " + institution + " but was signed by " +
              cn + " of " + o;
    return false;
  }
  const std::string desk = fields.count("desk") ? fields.at("desk") : "";
  if (expect.desk && desk != *expect.desk) {
    *detail = "the report names desk \"" + desk + "\" but the gateway's receipt says \"" +
              *expect.desk + "\"";
    return false;
  }
  if (expect.accepted_at &&
      absl::AbsDuration(*expect.accepted_at - signed_at) > kSignedAtTolerance) {
    *detail = "signed_at " + Rfc3339(signed_at) + " is more than " +
              absl::FormatDuration(kSignedAtTolerance) + " from its receipt by the gateway at " +
              Rfc3339(*expect.accepted_at);
    return false;
  }
  return true;
}

}  // namespace

bool VerifySignedReport(const std::string& canonical, rdg::v1::SignatureFormat format,
                        const std::string& signature, const std::string& signer_pem,
                        const std::string& ca_path, const ReportExpectations& expect,
                        std::string* detail) {
  Store store = CaStore(ca_path, detail);
  if (!store) return false;
  if (signature.empty()) {
    *detail = "the report is not signed";
    return false;
  }
  const std::map<std::string, std::string> fields = CanonicalReportFields(canonical);
  absl::Time signed_at;
  std::string parse_error;
  if (fields.empty() || !fields.count("signed_at") ||
      !absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", fields.at("signed_at"), &signed_at, &parse_error)) {
    *detail = "report.txt is not RDG-REPORT-V1 text with a signed_at time";
    return false;
  }
  Cert signer = SignerOf(canonical, format, signature, signer_pem, store.get(), detail);
  if (!signer) return false;
  // The chain, as it stood when the report was signed.
  if (std::string why; !ChainsAt(store.get(), signer.get(), signed_at, &why)) {
    *detail = "the signer certificate does not chain to the platform CA at signed_at " +
              Rfc3339(signed_at) + ": " + why;
    return false;
  }
  if (!IsReadersSigningCertificate(signer.get(), detail)) return false;
  const std::string o = SubjectField(signer.get(), NID_organizationName);
  const std::string cn = SubjectField(signer.get(), NID_commonName);
  if (!MatchesExpectations(fields, cn, o, signed_at, expect, detail)) return false;
  const std::string desk = fields.count("desk") ? fields.at("desk") : "";
  char name[256];
  X509_NAME_oneline(X509_get_subject_name(signer.get()), name, sizeof(name));
  *detail = std::string("signed by ") + name + (desk.empty() ? std::string() : ", desk " + desk) +
            ", at " + Rfc3339(signed_at);
  return true;
}

bool VerifyReceipt(const std::string& receipt, const std::string& signature,
                   const std::string& ca_path, std::map<std::string, std::string>* fields,
                   std::string* detail) {
  Store store = CaStore(ca_path, detail);
  if (!store) return false;
  if (receipt.empty() || signature.empty()) {
    *detail = "there is no gateway receipt (receipt.txt and receipt.p7s)";
    return false;
  }
  *fields = ReceiptFields(receipt);
  absl::Time issued_at;
  std::string ignored;
  if (fields->empty() || !fields->count("issued_at") ||
      !absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", fields->at("issued_at"), &issued_at, &ignored)) {
    *detail = "receipt.txt is not RDG-RECEIPT-V1 text with an issued_at time";
    return false;
  }
  for (const char* key : {"report_id", "version", "exam_id", "origin_institution", "reader_user",
                          "reader_institution", "accepted_at", "report_sha256"}) {
    if (!fields->count(key) || fields->at(key).empty()) {
      *detail = std::string("receipt.txt gives no ") + key;
      return false;
    }
  }
  return GatewaySigned(receipt, signature, store.get(), issued_at, "receipt.txt", "receipt",
                       detail);
}

bool VerifyGatewaySignature(const std::string& content, const std::string& signature,
                            const std::string& ca_path, absl::Time at, const std::string& what,
                            std::string* detail) {
  Store store = CaStore(ca_path, detail);
  if (!store) return false;
  return GatewaySigned(content, signature, store.get(), at, what, what, detail);
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

bool CertificateIdentity(const std::string& cert_path, std::string* institution, std::string* user,
                         std::string* error) {
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
