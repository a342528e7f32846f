#include "gateway/atna/dicom_audit_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/atna/syslog_sender.h"
#include "storage/formats/text.h"

namespace rdg::atna {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kAt = absl::FromUnixMicros(1'800'000'000'123'456);

AuditSource Source() { return {"rdg-gateway@gw1", "示范省远程诊断平台", "gw1", 4242}; }

storage::AuditRecord Upload() {
  storage::AuditRecord r = storage::AuditOf(kAt, "clinic-a1", "clinic-a1", storage::Role::kClinic,
                                            "upload", "ex-1", "DICOM 1.2.3, 100 bytes");
  r.seq = 17;
  r.patient_id = "QS-1^^^QSHOSP~110101199003074514^^^CHN^NI";
  r.peer = "ipv4:10.1.2.3:50122";
  r.subject = "CN=clinic-a1,OU=clinic,O=clinic-a1";
  return r;
}

TEST(DicomAuditMessageTest, AnUploadIsATransferInWithPatientAndStudy) {
  const std::string xml = DicomAuditMessage(Upload(), {"1.2.840.99", "张^三"}, Source());
  EXPECT_THAT(xml, HasSubstr("<EventIdentification EventActionCode=\"C\" "
                             "EventDateTime=\"2027-01-15T08:00:00.123456Z\" "
                             "EventOutcomeIndicator=\"0\">"));
  EXPECT_THAT(xml, HasSubstr("<EventID csd-code=\"110104\" codeSystemName=\"DCM\" "
                             "originalText=\"DICOM Instances Transferred\"/>"));
  // The clinic sends (source), the gateway receives (destination).
  EXPECT_THAT(xml, HasSubstr("UserID=\"clinic-a1@clinic-a1\" UserName=\"CN=clinic-a1,OU=clinic,"
                             "O=clinic-a1\" UserIsRequestor=\"true\" NetworkAccessPointID="
                             "\"10.1.2.3\" NetworkAccessPointTypeCode=\"2\"><RoleIDCode "
                             "csd-code=\"110153\""));
  EXPECT_THAT(xml, HasSubstr("UserID=\"rdg-gateway@gw1\" AlternativeUserID=\"4242\" "
                             "UserIsRequestor=\"false\" NetworkAccessPointID=\"gw1\" "
                             "NetworkAccessPointTypeCode=\"1\"><RoleIDCode csd-code=\"110152\""));
  EXPECT_THAT(xml,
              HasSubstr("<AuditSourceIdentification AuditEnterpriseSiteID=\"示范省远程诊断平台\" "
                        "AuditSourceID=\"rdg-gateway@gw1\"><AuditSourceTypeCode "
                        "csd-code=\"4\"/>"));
  EXPECT_THAT(xml,
              HasSubstr("ParticipantObjectID=\"QS-1^^^QSHOSP~110101199003074514^^^CHN^NI\" "
                        "ParticipantObjectTypeCode=\"1\" ParticipantObjectTypeCodeRole=\"1\""));
  EXPECT_THAT(xml, HasSubstr("<ParticipantObjectName>张^三</ParticipantObjectName>"));
  EXPECT_THAT(xml, HasSubstr("ParticipantObjectID=\"1.2.840.99\" ParticipantObjectTypeCode=\"2\""));
  EXPECT_THAT(xml, HasSubstr("csd-code=\"110180\""));
  EXPECT_THAT(xml, HasSubstr("RDG audit record 17: upload: DICOM 1.2.3, 100 bytes"));
  EXPECT_THAT(xml, Not(HasSubstr("\n")));  // one line: one syslog message
}

TEST(DicomAuditMessageTest, ARefusalIsAMinorFailureAndNamesItsReason) {
  storage::AuditRecord r = Upload();
  r.action = "get_exam";
  r.outcome = "NOT_FOUND";
  r.detail = "no exam ex-1 for institution clinic-b1";
  const std::string xml = DicomAuditMessage(r, {}, Source());
  EXPECT_THAT(xml, HasSubstr("EventOutcomeIndicator=\"4\""));
  EXPECT_THAT(xml, HasSubstr("get_exam refused (NOT_FOUND): no exam ex-1"));
  // The exam is unknown to the index here: it is named by its RDG id.
  EXPECT_THAT(xml, HasSubstr("ParticipantObjectID=\"ex-1\""));
  EXPECT_THAT(xml, HasSubstr("csd-code=\"exam\" codeSystemName=\"RDG\""));
  r.outcome = "INTERNAL";
  EXPECT_THAT(DicomAuditMessage(r, {}, Source()), HasSubstr("EventOutcomeIndicator=\"8\""));
}

TEST(DicomAuditMessageTest, EventsOfTheLogsActions) {
  EXPECT_STREQ(EventOf("application_start", false).type_code, "110120");
  EXPECT_STREQ(EventOf("tls_handshake", false).code, "110114");
  EXPECT_STREQ(EventOf("break_glass", true).type_code, "110127");
  EXPECT_STREQ(EventOf("fetch_exam", true).code, "110104");
  EXPECT_EQ(EventOf("fetch_exam", true).action, 'R');
  EXPECT_STREQ(EventOf("admin_audit_export", false).code, "110101");
  EXPECT_STREQ(EventOf("admin_queues", false).code, "110112");
  EXPECT_STREQ(EventOf("something_new", true).code, "110103");
  EXPECT_STREQ(EventOf("something_new", false).code, "110112");
}

TEST(DicomAuditMessageTest, HostileTextCannotBreakTheXml) {
  // formats::XmlEscape (tested with the ECG drawing) keeps every message one line of XML.
  EXPECT_EQ(formats::XmlEscape("a<b>&\"'\x01\n"), "a&lt;b&gt;&amp;&quot;&apos;  ");
  storage::AuditRecord r = Upload();
  r.detail = "</EventOutcomeDescription><Injected/>";
  EXPECT_THAT(DicomAuditMessage(r, {}, Source()), Not(HasSubstr("<Injected/>")));
}

TEST(SyslogTest, Rfc5424MessageInAnOctetCountedFrame) {
  const std::string message =
      SyslogMessage(kAt, "gw 1\x01", "rdg-gateway", 4242, 17, "<AuditMessage/>");
  EXPECT_EQ(message,
            "<85>1 2027-01-15T08:00:00.123456Z gw1 rdg-gateway 4242 IHE+RFC-3881 "
            "[meta sequenceId=\"17\"] \xEF\xBB\xBF<AuditMessage/>");
  EXPECT_EQ(OctetCountedFrame("héllo"), "6 héllo");
  EXPECT_THAT(SyslogMessage(kAt, "", "", 1, 1, "m"), HasSubstr(" - - 1 "));
}

}  // namespace
}  // namespace rdg::atna
