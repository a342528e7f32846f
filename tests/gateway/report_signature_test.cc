#include "gateway/signing/report_signature.h"
#include "gateway/signing/receipt_signer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "rdg/v1/report_canonical.h"
#include "tests/mocks/dev_pki.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::signing {
namespace {

using ::testing::HasSubstr;

int Shell(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

//! Two dev PKIs (the platform's and a rogue one) and signatures made with the openssl CLI — the
//! tool any third party has — over a canonical report.
class ReportSignatureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    ASSERT_TRUE(testing::MakeDevPki(dir_->path(), "pki"));
    ASSERT_TRUE(testing::MakeDevPki(dir_->path(), "rogue"));
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    verifier_ = *CmsSignatureVerifier::Create(testing::ReadFileBytes(dir_->Join("pki/ca.pem")));
    rdg::v1::ReportContent c;
    c.set_exam_id("ex-0123456789abcdef");
    c.set_status(rdg::v1::FINAL_REPORT);
    c.set_reader_user("reader-a-rad");
    c.set_reader_institution("county-a");
    c.mutable_signed_at()->set_seconds(1'800'000'000);
    c.set_findings("No focal consolidation.\nHeart size normal.");
    c.set_impression("Normal chest radiograph.");
    content_ = rdg::v1::CanonicalReportBytes(c);
    content_path_ = dir_->Write("report.txt", content_);
  }

  std::string CmsSign(const std::string& pki, const std::string& name) {
    const std::string out = dir_->Join(name + ".p7s");
    EXPECT_EQ(Shell("openssl cms -sign -binary -md sha256 -outform DER -in " + content_path_ +
                    " -signer " + dir_->Join(pki + "/" + name + ".pem") + " -inkey " +
                    dir_->Join(pki + "/" + name + ".key") + " -out " + out),
              0);
    return testing::ReadFileBytes(out);
  }
  std::string Sm2Sign(const std::string& name) {
    const std::string out = dir_->Join(name + ".sm2");
    EXPECT_EQ(Shell("openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678 "
                    "-inkey " +
                    dir_->Join("pki/" + name + ".key") + " -in " + content_path_ + " -out " + out),
              0);
    return testing::ReadFileBytes(out);
  }
  std::string Pem(const std::string& pki, const std::string& name) {
    return testing::ReadFileBytes(dir_->Join(pki + "/" + name + ".pem"));
  }

  //! Verified as signed now.
  absl::StatusOr<CertificateSubject> Verify(rdg::v1::SignatureFormat format,
                                            const std::string& content,
                                            const std::string& signature, const std::string& pem,
                                            absl::Time signed_at = absl::Now()) {
    return verifier_->Verify(format, content, signature, pem, signed_at);
  }

  static testing::TempDir* dir_;
  std::unique_ptr<CmsSignatureVerifier> verifier_;
  std::string content_, content_path_;
};
testing::TempDir* ReportSignatureTest::dir_ = nullptr;

TEST_F(ReportSignatureTest, EcdsaCmsFromOpensslVerifies) {
  auto who = Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, CmsSign("pki", "reader-a-rad"),
                    Pem("pki", "reader-a-rad"));
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->common_name, "reader-a-rad");
  EXPECT_EQ(who->organization, "county-a");
  EXPECT_EQ(who->organizational_unit, "reader");
}

TEST_F(ReportSignatureTest, Sm2FromOpensslVerifies) {
  auto who =
      Verify(rdg::v1::SM2_SM3_RAW, content_, Sm2Sign("reader-a-ecg"), Pem("pki", "reader-a-ecg"));
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->common_name, "reader-a-ecg");
}

TEST_F(ReportSignatureTest, OneChangedByteFails) {
  std::string tampered = content_;
  tampered[tampered.size() - 3] ^= 0x01;
  EXPECT_TRUE(
      absl::IsInvalidArgument(Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, tampered,
                                     CmsSign("pki", "reader-a-rad"), Pem("pki", "reader-a-rad"))
                                  .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      Verify(rdg::v1::SM2_SM3_RAW, tampered, Sm2Sign("reader-a-ecg"), Pem("pki", "reader-a-ecg"))
          .status()));
}

TEST_F(ReportSignatureTest, ForeignCaIsRefused) {
  auto r = Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, CmsSign("rogue", "reader-a-rad"),
                  Pem("rogue", "reader-a-rad"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("platform CA"));
}

TEST_F(ReportSignatureTest, SignerMustBeTheSubmittedCertificate) {
  auto r = Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, CmsSign("pki", "reader-a-lab"),
                  Pem("pki", "reader-a-rad"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("submitted signer certificate"));
}

TEST_F(ReportSignatureTest, FormatMustFitTheKey) {
  EXPECT_FALSE(Verify(rdg::v1::SM2_SM3_RAW, content_, CmsSign("pki", "reader-a-rad"),
                      Pem("pki", "reader-a-rad"))
                   .ok());
  EXPECT_FALSE(Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, Sm2Sign("reader-a-ecg"),
                      Pem("pki", "reader-a-ecg"))
                   .ok());
  EXPECT_FALSE(
      Verify(rdg::v1::SIGNATURE_FORMAT_UNSPECIFIED, content_, "x", Pem("pki", "reader-a-rad"))
          .ok());
  EXPECT_FALSE(Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, "x", "no pem").ok());
}

TEST_F(ReportSignatureTest, OnlyASigningCertificateValidAtSignedAtSigns) {
  // clinic-a1's certificate: digitalSignature only — a transport key, not a signing one.
  auto clinic = Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, CmsSign("pki", "clinic-a1"),
                       Pem("pki", "clinic-a1"));
  ASSERT_FALSE(clinic.ok());
  EXPECT_THAT(clinic.status().message(), HasSubstr("nonRepudiation"));
  // reader-a-rad's certificate did not exist in 2001.
  auto old = Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, CmsSign("pki", "reader-a-rad"),
                    Pem("pki", "reader-a-rad"),
                    absl::FromCivil(absl::CivilSecond(2001, 1, 1), absl::UTCTimeZone()));
  ASSERT_FALSE(old.ok());
  EXPECT_THAT(old.status().message(), HasSubstr("when the report was signed"));
  // A reader certificate of the platform CA without any keyUsage extension (OpenSSL would then
  // report every usage as allowed).
  const std::string config = dir_->Write("no-usage.cnf",
                                         "[ req ]\ndistinguished_name = dn\n[ dn ]\n[ ext ]\n"
                                         "basicConstraints = critical, CA:FALSE\n");
  ASSERT_EQ(Shell("openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                  "-keyout " +
                  dir_->Join("pki/no-usage.key") + " -out " + dir_->Join("pki/no-usage.pem") +
                  " -subj /O=county-a/OU=reader/CN=reader-a-rad -CA " + dir_->Join("pki/ca.pem") +
                  " -CAkey " + dir_->Join("pki-ca/ca.key") + " -config " + config +
                  " -extensions ext -days 2"),
            0);
  auto no_usage = Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, content_, CmsSign("pki", "no-usage"),
                         Pem("pki", "no-usage"));
  ASSERT_FALSE(no_usage.ok());
  EXPECT_THAT(no_usage.status().message(), HasSubstr("nonRepudiation"));
}

TEST_F(ReportSignatureTest, ReceiptsAreSignedWithTheGatewaysKeyAsOpensslVerifies) {
  const std::string key = testing::ReadFileBytes(dir_->Join("pki/gateway.key"));
  EXPECT_TRUE(absl::IsInvalidArgument(
      CmsReceiptSigner::Create(Pem("pki", "gateway"),
                               testing::ReadFileBytes(dir_->Join("pki/clinic-a1.key")))
          .status()))
      << "a key that is not the certificate's";
  auto signer = CmsReceiptSigner::Create(Pem("pki", "gateway"), key);
  ASSERT_TRUE(signer.ok()) << signer.status();
  rdg::v1::ReportReceipt r;
  r.report_id = "rp-1";
  r.version = 2;
  r.exam_id = "ex-1";
  r.origin_institution = "clinic-a1";
  r.reader_user = "reader-a-rad";
  r.reader_institution = "county-a";
  r.desk = "county-a/imaging-desk";
  r.accepted_at_unix = 1'800'000'000;
  r.issued_at_unix = 1'800'000'060;
  r.report_sha256 = std::string(64, 'a');
  const std::string text = rdg::v1::ReportReceiptBytes(r);
  EXPECT_EQ(text,
            "RDG-RECEIPT-V1\nreport_id: rp-1\nversion: 2\nexam_id: ex-1\n"
            "origin_institution: clinic-a1\nreader_user: reader-a-rad\n"
            "reader_institution: county-a\ndesk: county-a/imaging-desk\n"
            "accepted_at: 2027-01-15T08:00:00Z\nissued_at: 2027-01-15T08:01:00Z\n"
            "report_sha256: " +
                std::string(64, 'a') + "\n");
  auto signature = (*signer)->Sign(text);
  ASSERT_TRUE(signature.ok()) << signature.status();
  const std::string text_path = dir_->Write("receipt.txt", text);
  const std::string sig_path = dir_->Write("receipt.p7s", *signature);
  const std::string verify = "openssl cms -verify -binary -inform DER -in " + sig_path +
                             " -CAfile " + dir_->Join("pki/ca.pem") +
                             " -purpose any -out /dev/null";
  EXPECT_EQ(Shell(verify + " -content " + text_path), 0);
  const std::string other = dir_->Write("other.txt", text + "x");
  EXPECT_NE(Shell(verify + " -content " + other), 0);
}

TEST(CanonicalReportTest, FixedOrderAndEscaping) {
  rdg::v1::ReportContent c;
  c.set_exam_id("ex-1");
  c.set_status(rdg::v1::AMENDED_REPORT);
  c.set_reader_user("u");
  c.set_reader_institution("county-a");
  c.mutable_signed_at()->set_seconds(1'800'000'000);
  c.set_critical(true);
  c.set_supersedes_report_id("rp-9");
  c.set_findings("line1\nline2\\end\r");
  c.set_impression("危急值: 血钾 6.8");
  EXPECT_EQ(rdg::v1::CanonicalReportBytes(c),
            "RDG-REPORT-V1\n"
            "exam_id: ex-1\n"
            "status: AMENDED_REPORT\n"
            "reader_user: u\n"
            "reader_institution: county-a\n"
            "signed_at: 2027-01-15T08:00:00Z\n"
            "critical: true\n"
            "supersedes: rp-9\n"
            "findings: line1\\nline2\\\\end\\r\n"
            "impression: 危急值: 血钾 6.8\n");
  c.set_amendment_reason("size overstated");
  EXPECT_TRUE(absl::EndsWith(rdg::v1::CanonicalReportBytes(c),
                             "impression: 危急值: 血钾 6.8\namendment_reason: size overstated\n"))
      << "addenda sign their reason; other versions' bytes are as before";
  c.set_desk("county-a/imaging-desk");
  EXPECT_TRUE(absl::EndsWith(rdg::v1::CanonicalReportBytes(c),
                             "amendment_reason: size overstated\ndesk: county-a/imaging-desk\n"))
      << "the desk is signed last, and only when there is one";
}

}  // namespace
}  // namespace rdg::signing
