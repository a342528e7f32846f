#include "gateway/signing/certificate.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>

#include <memory>

#include "absl/strings/str_cat.h"
#include "storage/base/openssl_support.h"

namespace rdg::signing {
namespace {

//! The single value of attribute `nid`, "" if absent, or an error if repeated.
absl::StatusOr<std::string> SingleEntry(X509_NAME* name, int nid, absl::string_view label) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return std::string();
  if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate subject has more than one ", label));
  }
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0)
    return absl::InvalidArgumentError(absl::StrCat("certificate ", label, " unreadable"));
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

//! `name` as one RFC 2253 line, UTF-8 kept as it is (not escaped to \\XX).
std::string OneLine(const X509_NAME* name) {
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || X509_NAME_print_ex(out.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return std::string();
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

openssl::X509Ptr FirstCertificate(absl::string_view pem) {
  openssl::BioPtr bio = openssl::MemBio(pem);
  return openssl::X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

}  // namespace

absl::StatusOr<std::vector<CertificateValidity>> CertificatesIn(absl::string_view pem) {
  openssl::BioPtr bio = openssl::MemBio(pem);
  std::vector<CertificateValidity> out;
  while (openssl::X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    tm end{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &end) != 1) {
      return absl::InvalidArgumentError("a certificate's notAfter is unreadable");
    }
    out.push_back({OneLine(X509_get_subject_name(cert.get())), absl::FromTimeT(timegm(&end))});
  }
  ERR_clear_error();  // the end of the PEM data is reported as an error
  if (out.empty()) return absl::InvalidArgumentError("no PEM certificate");
  return out;
}

std::string SubjectLine(absl::string_view pem) {
  openssl::X509Ptr cert = FirstCertificate(pem);
  return cert ? OneLine(X509_get_subject_name(cert.get())) : std::string();
}

absl::StatusOr<CertificateSubject> ParseCertificateSubject(absl::string_view pem) {
  openssl::X509Ptr cert = FirstCertificate(pem);
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate");
  X509_NAME* name = X509_get_subject_name(cert.get());
  CertificateSubject subject;
  auto o = SingleEntry(name, NID_organizationName, "O");
  if (!o.ok()) return o.status();
  auto ou = SingleEntry(name, NID_organizationalUnitName, "OU");
  if (!ou.ok()) return ou.status();
  auto cn = SingleEntry(name, NID_commonName, "CN");
  if (!cn.ok()) return cn.status();
  subject.organization = *std::move(o);
  subject.organizational_unit = *std::move(ou);
  subject.common_name = *std::move(cn);
  subject.distinguished_name = OneLine(name);
  return subject;
}

}  // namespace rdg::signing
