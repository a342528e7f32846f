#include "gateway/auth/principal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "gateway/auth/peer_identities.h"
#include "gateway/auth/rbac.h"
#include "gateway/config/gateway_config.h"
#include "gateway/signing/certificate.h"
#include "gateway/signing/revocation.h"
#include "tests/mocks/dev_pki.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::auth {
namespace {

//! Certificates from the real dev PKI script, made once for the suite.
class PrincipalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new testing::TempDir();
    ASSERT_TRUE(testing::MakeDevPki(pki_->path(), "pki"));
    auto config =
        config::LoadConfigFile(std::string(RDG_SOURCE_DIR) + "/deploy/config/demo.textproto");
    ASSERT_TRUE(config.ok()) << config.status();
    directory_ = new config::InstitutionDirectory(*config);
  }
  static void TearDownTestSuite() {
    delete directory_;
    delete pki_;
  }
  static std::string Pem(const std::string& name) {
    return testing::ReadFileBytes(pki_->Join("pki/" + name + ".pem"));
  }
  static testing::TempDir* pki_;
  static config::InstitutionDirectory* directory_;
};
testing::TempDir* PrincipalTest::pki_ = nullptr;
config::InstitutionDirectory* PrincipalTest::directory_ = nullptr;

TEST_F(PrincipalTest, ClinicCertificate) {
  auto p = PrincipalFromCertificate(Pem("clinic-a1"), *directory_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->institution, "clinic-a1");
  EXPECT_EQ(p->role, rdg::v1::CLINIC);
  EXPECT_EQ(p->user, "clinic-a1");
  EXPECT_TRUE(Authorize(*p, Permission::kUpload).ok());
  EXPECT_TRUE(AuthorizeExamAccess(*p, "ex-1", "clinic-a1").ok());
  EXPECT_TRUE(absl::IsNotFound(AuthorizeExamAccess(*p, "ex-1", "clinic-b1")));
}

TEST_F(PrincipalTest, TheAuditRecordNamesTheCertificateAndTheAddress) {
  auto p = PrincipalFromCertificate(Pem("reader-a-rad"), *directory_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "CN=reader-a-rad,OU=reader,O=county-a");
  p->peer = "ipv4:10.1.2.3:50122";
  const absl::Time at = absl::FromUnixSeconds(1'800'000'000);
  storage::AuditRecord r = AuditBy(*p, at, "fetch_exam", "ex-1", "detail");
  EXPECT_EQ(r.at, at);
  EXPECT_EQ(r.institution, "county-a");
  EXPECT_EQ(r.user, "reader-a-rad");
  EXPECT_EQ(r.role, storage::Role::kReader);
  EXPECT_EQ(r.action, "fetch_exam");
  EXPECT_EQ(r.exam_id, "ex-1");
  EXPECT_EQ(r.detail, "detail");
  EXPECT_EQ(r.subject, "CN=reader-a-rad,OU=reader,O=county-a");
  EXPECT_EQ(r.peer, "ipv4:10.1.2.3:50122");
  EXPECT_EQ(r.patient_id, "");  // the store fills it from the exam
}

TEST_F(PrincipalTest, SubjectLinesKeepChineseNamesAndNameCertificatesOutsideTheProfile) {
  // The gateway's own certificate has no role: no principal, but its subject is still named.
  EXPECT_THAT(signing::SubjectLine(Pem("gateway")), ::testing::HasSubstr("CN="));
  EXPECT_EQ(signing::SubjectLine("not a certificate"), "");
  const std::string cert = pki_->Join("li.pem");
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout " +
      pki_->Join("li.key") + " -out " + cert +
      " -days 1 -utf8 -subj '/O=county-a/OU=reader/CN=李医生' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(signing::SubjectLine(testing::ReadFileBytes(cert)), "CN=李医生,OU=reader,O=county-a");
}

TEST_F(PrincipalTest, ReaderAndAdminCertificates) {
  auto reader = PrincipalFromCertificate(Pem("reader-a-rad"), *directory_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(reader->institution, "county-a");
  EXPECT_EQ(reader->role, rdg::v1::READER);
  EXPECT_EQ(reader->user, "reader-a-rad");
  EXPECT_TRUE(absl::IsPermissionDenied(Authorize(*reader, Permission::kUpload)));
  auto admin = PrincipalFromCertificate(Pem("admin"), *directory_);
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(admin->role, rdg::v1::ADMIN);
  EXPECT_TRUE(absl::IsPermissionDenied(Authorize(*admin, Permission::kListOwnExams)));
  // The SM2 signing certificate carries the same identity as its TLS twin.
  auto sm2 = PrincipalFromCertificate(Pem("reader-a-ecg"), *directory_);
  ASSERT_TRUE(sm2.ok()) << sm2.status();
  EXPECT_EQ(sm2->user, "reader-a-ecg");
}

TEST_F(PrincipalTest, UnknownInstitutionOrBadProfileIsRefused) {
  rdg::v1::GatewayConfig other;
  auto* inst = other.add_institutions();
  inst->set_id("somewhere-else");
  inst->set_level(rdg::v1::TOWNSHIP);
  config::InstitutionDirectory foreign(other);
  EXPECT_TRUE(
      absl::IsUnauthenticated(PrincipalFromCertificate(Pem("clinic-a1"), foreign).status()));
  EXPECT_TRUE(
      absl::IsUnauthenticated(PrincipalFromCertificate("not a cert", *directory_).status()));
  // The gateway's own server certificate has OU=gateway: not a client role.
  EXPECT_TRUE(
      absl::IsUnauthenticated(PrincipalFromCertificate(Pem("gateway"), *directory_).status()));
}

TEST_F(PrincipalTest, RoleMustFitInstitutionLevel) {
  rdg::v1::GatewayConfig config;
  auto* inst = config.add_institutions();
  inst->set_id("clinic-a1");
  inst->set_level(rdg::v1::COUNTY);  // a "clinic" certificate for a county hospital
  config::InstitutionDirectory directory(config);
  EXPECT_TRUE(
      absl::IsPermissionDenied(PrincipalFromCertificate(Pem("clinic-a1"), directory).status()));
}

TEST_F(PrincipalTest, PeerIdentitiesParseEachCertificateOnceAndAskTheRevocationListEveryCall) {
  const std::string crl = pki_->Join("pki/crl.pem");
  ASSERT_EQ(std::system(("bash " + std::string(RDG_SOURCE_DIR) + "/deploy/dev-crl.sh " +
                         pki_->Join("pki") + " >/dev/null 2>&1")
                            .c_str()),
            0);
  auto revocations = signing::RevocationList::Open(crl, Pem("ca"));
  ASSERT_TRUE(revocations.ok()) << revocations.status();
  const PeerIdentities identities(*directory_, revocations->get(), /*capacity=*/2);

  for (int call = 0; call < 3; ++call) {
    auto p = identities.Resolve(Pem("reader-a-rad"));
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->user, "reader-a-rad");
    EXPECT_EQ(p->role, rdg::v1::READER);
    // A refusal is remembered too: the gateway's own certificate is no client's.
    EXPECT_TRUE(absl::IsUnauthenticated(identities.Resolve(Pem("gateway")).status()));
  }
  EXPECT_EQ(identities.parsed(), 2);

  // Revoked after it was remembered: refused on its next call, naming the revocation.
  ASSERT_EQ(std::system(("bash " + std::string(RDG_SOURCE_DIR) + "/deploy/dev-crl.sh " +
                         pki_->Join("pki") + " reader-a-rad >/dev/null 2>&1")
                            .c_str()),
            0);
  ASSERT_TRUE((*revocations)->Reload().ok());
  auto refused = identities.Resolve(Pem("reader-a-rad"));
  EXPECT_TRUE(absl::IsUnauthenticated(refused.status()));
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("revoked"));
  EXPECT_EQ(identities.parsed(), 2);

  // A third certificate does not fit: everything is forgotten and parsed again when it calls.
  ASSERT_TRUE(identities.Resolve(Pem("clinic-a1")).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(identities.Resolve(Pem("reader-a-rad")).status()));
  EXPECT_EQ(identities.parsed(), 4);
}

}  // namespace
}  // namespace rdg::auth
