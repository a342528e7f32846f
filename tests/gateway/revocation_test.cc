// RevocationList over CRLs made by `openssl ca` (deploy/dev-crl.sh): who is revoked and since
// when, a new CRL file noticed without a restart, CRLs of another CA refused, and report
// signatures judged by their signing time against the revocation.
#include "gateway/signing/revocation.h"

#include <gtest/gtest.h>

#include <openssl/pem.h>

#include <cstdlib>
#include <ctime>
#include <thread>

#include "gateway/signing/report_signature.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/openssl_support.h"
#include "tests/mocks/dev_pki.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::signing {
namespace {

int Quietly(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

class RevocationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    ASSERT_TRUE(testing::MakeDevPki(dir_->path(), "pki"));
    ASSERT_TRUE(testing::MakeDevPki(dir_->path(), "rogue"));
  }
  static void TearDownTestSuite() { delete dir_; }

  //! Revokes `names` (cumulatively) and returns the CRL file.
  static std::string Revoke(const std::string& pki, const std::string& names) {
    EXPECT_EQ(Quietly("bash " + std::string(RDG_SOURCE_DIR) + "/deploy/dev-crl.sh " +
                      dir_->Join(pki) + " " + names),
              0);
    return dir_->Join(pki + "/crl.pem");
  }
  static std::string Pem(const std::string& name) {
    return testing::ReadFileBytes(dir_->Join("pki/" + name + ".pem"));
  }
  static std::string Ca() { return Pem("ca"); }

  static testing::TempDir* dir_;
};
testing::TempDir* RevocationTest::dir_ = nullptr;

TEST_F(RevocationTest, WithoutACrlFileNothingIsRevoked) {
  auto list = RevocationList::Open("", Ca());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_FALSE((*list)->RevokedAt(Pem("reader-a-rad")).has_value());
  EXPECT_TRUE((*list)->Reload().ok());
}

TEST_F(RevocationTest, ARevokedCertificateIsNamedWithItsTimeAndANewFileIsReadWithoutARestart) {
  const absl::Time before = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  auto list = RevocationList::Open(Revoke("pki", "reader-a-rad2"), Ca());
  ASSERT_TRUE(list.ok()) << list.status();
  auto revoked = (*list)->RevokedAt(Pem("reader-a-rad2"));
  ASSERT_TRUE(revoked.has_value());
  EXPECT_GE(*revoked, before);
  EXPECT_LE(*revoked, absl::Now());
  EXPECT_FALSE((*list)->RevokedAt(Pem("reader-a-rad")).has_value());
  EXPECT_FALSE((*list)->RevokedAt("not a certificate").has_value());

  Revoke("pki", "reader-a-lab");  // a new file renamed over the old one
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!(*list)->RevokedAt(Pem("reader-a-lab")).has_value() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE((*list)->RevokedAt(Pem("reader-a-lab")).has_value());
  EXPECT_EQ((*list)->size(), 2u);
}

TEST_F(RevocationTest, ACrlOfAnotherCaOrNoCrlIsRefusedAndABrokenReloadKeepsTheList) {
  const std::string rogue = Revoke("rogue", "reader-a-rad");
  auto refused = RevocationList::Open(rogue, Ca());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("is not signed by the platform CA"),
            absl::string_view::npos)
      << refused.status();
  const std::string empty = dir_->Write("empty.pem", "");
  EXPECT_NE(RevocationList::Open(empty, Ca()).status().message().find("holds no PEM CRL"),
            absl::string_view::npos);

  const std::string file = dir_->Write("crl-copy.pem", testing::ReadFileBytes(Revoke("pki", "")));
  auto list = RevocationList::Open(file, Ca());
  ASSERT_TRUE(list.ok()) << list.status();
  const size_t known = (*list)->size();
  dir_->Write("crl-copy.pem", testing::ReadFileBytes(rogue));
  EXPECT_FALSE((*list)->Reload().ok());
  EXPECT_EQ((*list)->size(), known);
}

//! A CRL of the dev CA revoking `cert_pem` at `revoked_at` (openssl ca can only say "now").
std::string CrlRevoking(const std::string& cert_pem, absl::Time revoked_at,
                        const std::string& ca_pem, const std::string& ca_key_pem) {
  using openssl::MemBio;
  openssl::X509Ptr cert(PEM_read_bio_X509(MemBio(cert_pem).get(), nullptr, nullptr, nullptr));
  openssl::X509Ptr ca(PEM_read_bio_X509(MemBio(ca_pem).get(), nullptr, nullptr, nullptr));
  openssl::PkeyPtr key(
      PEM_read_bio_PrivateKey(MemBio(ca_key_pem).get(), nullptr, nullptr, nullptr));
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.get()));
  ASN1_TIME* now = ASN1_TIME_set(nullptr, absl::ToTimeT(absl::Now()));
  X509_CRL_set1_lastUpdate(crl, now);
  X509_REVOKED* entry = X509_REVOKED_new();
  X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(cert.get()));
  ASN1_TIME* when = ASN1_TIME_set(nullptr, absl::ToTimeT(revoked_at));
  X509_REVOKED_set_revocationDate(entry, when);
  X509_CRL_add0_revoked(crl, entry);
  X509_CRL_sort(crl);
  X509_CRL_sign(crl, key.get(), EVP_sha256());
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(out.get(), crl);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  std::string pem(data, size);
  ASN1_TIME_free(now);
  ASN1_TIME_free(when);
  X509_CRL_free(crl);
  return pem;
}

TEST_F(RevocationTest, AReportSignedBeforeTheRevocationVerifiesOneSignedAfterDoesNot) {
  // The SM2 signing key of reader-a-ecg (its TLS identity is another certificate), revoked an
  // hour after it was issued.
  openssl::X509Ptr cert(
      PEM_read_bio_X509(openssl::MemBio(Pem("reader-a-ecg")).get(), nullptr, nullptr, nullptr));
  std::tm not_before{};
  ASSERT_EQ(ASN1_TIME_to_tm(X509_get0_notBefore(cert.get()), &not_before), 1);
  const absl::Time issued = absl::FromTimeT(timegm(&not_before));
  const absl::Time revoked_at = issued + absl::Hours(1);
  const std::string crl =
      dir_->Write("ecg-crl.pem", CrlRevoking(Pem("reader-a-ecg"), revoked_at, Ca(),
                                             testing::ReadFileBytes(dir_->Join("pki-ca/ca.key"))));
  auto list = RevocationList::Open(crl, Ca());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ((*list)->RevokedAt(Pem("reader-a-ecg")), revoked_at);
  auto verifier = *CmsSignatureVerifier::Create(Ca(), list->get());

  rdg::v1::ReportContent c;
  c.set_exam_id("ex-0123456789abcdef");
  c.set_status(rdg::v1::FINAL_REPORT);
  c.set_reader_user("reader-a-ecg");
  c.set_reader_institution("county-a");
  c.set_findings("窦性心律，正常心电图。");
  auto sign = [&](absl::Time signed_at) {
    c.mutable_signed_at()->set_seconds(absl::ToUnixSeconds(signed_at));
    const std::string content = rdg::v1::CanonicalReportBytes(c);
    const std::string in = dir_->Write("ecg-report.txt", content);
    EXPECT_EQ(Quietly("openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678 "
                      "-inkey " +
                      dir_->Join("pki/reader-a-ecg.key") + " -in " + in + " -out " +
                      dir_->Join("ecg-report.sig")),
              0);
    return verifier->Verify(rdg::v1::SM2_SM3_RAW, content,
                            testing::ReadFileBytes(dir_->Join("ecg-report.sig")),
                            Pem("reader-a-ecg"), signed_at);
  };
  const auto before = sign(revoked_at - absl::Minutes(30));
  EXPECT_TRUE(before.ok()) << before.status();
  for (absl::Time at : {revoked_at, revoked_at + absl::Hours(2)}) {
    const auto after = sign(at);
    ASSERT_FALSE(after.ok());
    EXPECT_NE(after.status().message().find("the signer's certificate was revoked at"),
              absl::string_view::npos)
        << after.status();
  }
}

}  // namespace
}  // namespace rdg::signing
