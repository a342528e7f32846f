#include "gateway/signing/revocation.h"

#include <glog/logging.h>
#include <openssl/bn.h>
#include <sys/stat.h>

#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/base/openssl_support.h"
#include "storage/base/posix_file.h"
#include "storage/base/status_macros.h"

namespace rdg::signing {
namespace {

using openssl::BioPtr;
using openssl::MemBio;
using openssl::X509Ptr;
using CrlPtr = std::unique_ptr<X509_CRL, openssl::Deleter<X509_CRL, X509_CRL_free>>;
using BnPtr = std::unique_ptr<BIGNUM, openssl::Deleter<BIGNUM, BN_free>>;

//! How often the file is looked at for changes, at most.
constexpr absl::Duration kLookEvery = absl::Seconds(1);

std::string NameKey(const X509_NAME* name) {
  unsigned char* der = nullptr;
  const int length = i2d_X509_NAME(name, &der);
  std::string key = length > 0 ? std::string(reinterpret_cast<char*>(der), length) : "";
  OPENSSL_free(der);
  return key;
}

std::string SerialKey(const X509_NAME* issuer, const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  char* hex = bn ? BN_bn2hex(bn.get()) : nullptr;
  std::string key = absl::StrCat(NameKey(issuer), "/", hex ? hex : "");
  OPENSSL_free(hex);
  return key;
}

absl::Time TimeOf(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

}  // namespace

struct RevocationList::Impl {
  std::vector<X509Ptr> cas;

  //! The revoked serials of every CRL in `pem`, each checked against the CAs.
  absl::StatusOr<absl::flat_hash_map<std::string, absl::Time>> Parse(
      absl::string_view pem, const std::string& file) const {
    absl::flat_hash_map<std::string, absl::Time> revoked;
    BioPtr bio = MemBio(pem);
    int crls = 0;
    while (CrlPtr crl{PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)}) {
      ++crls;
      const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
      bool signed_by_ca = false;
      for (const X509Ptr& ca : cas) {
        if (X509_NAME_cmp(issuer, X509_get_subject_name(ca.get())) == 0 &&
            X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) == 1) {
          signed_by_ca = true;
          break;
        }
      }
      if (!signed_by_ca) {
        ERR_clear_error();
        return absl::InvalidArgumentError(absl::StrCat("CRL ", crls, " of tls.crl_file ", file,
                                                       " is not signed by the platform CA"));
      }
      const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
      for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
        const X509_REVOKED* r = sk_X509_REVOKED_value(entries, i);
        revoked[SerialKey(issuer, X509_REVOKED_get0_serialNumber(r))] =
            TimeOf(X509_REVOKED_get0_revocationDate(r));
      }
    }
    ERR_clear_error();  // the end of the PEM stream
    if (crls == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls.crl_file ", file, " holds no PEM CRL (X509 CRL)"));
    }
    return revoked;
  }
};

absl::StatusOr<std::unique_ptr<RevocationList>> RevocationList::Open(std::string crl_file,
                                                                     absl::string_view ca_pem) {
  auto impl = std::make_unique<Impl>();
  BioPtr bio = MemBio(ca_pem);
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    impl->cas.emplace_back(ca);
  }
  ERR_clear_error();
  if (impl->cas.empty()) return absl::InvalidArgumentError("no CA certificate in tls.ca_file");
  auto list =
      std::unique_ptr<RevocationList>(new RevocationList(std::move(crl_file), std::move(impl)));
  if (!list->crl_file_.empty()) RDG_RETURN_IF_ERROR(list->Reload());
  return list;
}

RevocationList::RevocationList(std::string crl_file, std::unique_ptr<Impl> impl)
    : crl_file_(std::move(crl_file)), impl_(std::move(impl)) {}

RevocationList::~RevocationList() = default;

std::string RevocationList::FileStamp() const {
  struct stat st {};
  if (::stat(crl_file_.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

absl::Status RevocationList::Reload() {
  if (crl_file_.empty()) return absl::OkStatus();
  const std::string stamp = FileStamp();
  RDG_ASSIGN_OR_RETURN(std::string pem, storage::ReadWholeFile(crl_file_, "tls.crl_file"));
  RDG_ASSIGN_OR_RETURN(auto revoked, impl_->Parse(pem, crl_file_));
  absl::MutexLock lock(&mu_);
  if (revoked.size() != revoked_.size() || stamp_.empty()) {
    LOG(INFO) << "revocation list " << crl_file_ << ": " << revoked.size()
              << " revoked certificates";
  }
  revoked_ = std::move(revoked);
  stamp_ = stamp;
  return absl::OkStatus();
}

void RevocationList::ReloadIfChanged() {
  if (crl_file_.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - last_look_ < kLookEvery) return;
    last_look_ = now;
    if (FileStamp() == stamp_) return;
  }
  if (absl::Status s = Reload(); !s.ok()) {
    LOG(WARNING) << "keeping the last revocation list: " << s.message();
    absl::MutexLock lock(&mu_);
    stamp_ = FileStamp();  // do not re-read a broken file every second; its next change is read
  }
}

std::string RevocationList::KeyOf(absl::string_view cert_pem) {
  BioPtr bio = MemBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return "";
  }
  return SerialKey(X509_get_issuer_name(cert.get()), X509_get0_serialNumber(cert.get()));
}

std::optional<absl::Time> RevocationList::RevokedAt(absl::string_view cert_pem) {
  return RevokedAtKey(KeyOf(cert_pem));
}

std::optional<absl::Time> RevocationList::RevokedAtKey(const std::string& key) {
  ReloadIfChanged();
  if (key.empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = revoked_.find(key);
  if (it == revoked_.end()) return std::nullopt;
  return it->second;
}

size_t RevocationList::size() const {
  absl::MutexLock lock(&mu_);
  return revoked_.size();
}

}  // namespace rdg::signing
