// A signed report as an HL7 ORU^R01 (formats/hl7_report): RDG's own ORU parser reads back the
// patient, the order, the reader, the status and every text unchanged — Chinese, line breaks and
// HL7 delimiters in the text included — and an amendment and a critical result are marked.
#include "storage/formats/hl7_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "storage/formats/hl7_lab.h"

namespace rdg::formats {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ReportMessageInput Report() {
  ReportMessageInput r;
  r.sending_facility = "county-a";
  r.receiving_application = "HIS";
  r.receiving_facility = "clinic-a1";
  r.control_id = "RDG7f3a2b91c0d4e5";
  absl::LoadTimeZone("Asia/Shanghai", &r.zone);
  r.signed_at = absl::FromCivil(absl::CivilSecond(2026, 12, 1, 10, 15, 30), absl::UTCTimeZone());
  r.sent_at = r.signed_at + absl::Seconds(2);
  r.patient_id = "P-0042";
  r.issuer_of_patient_id = "清河镇卫生院";
  r.patient_name = "Zhang^San=张^三";
  r.birth_date = "19560312";
  r.sex = "M";
  r.placer_order_number = "A20261201-7";
  r.filler_order_number = "ex-4b1d9e";
  r.service_code = "CT_CHEST";
  r.service_text = "胸部CT平扫";
  r.observed_at = "20261201093000";
  r.diagnostic_section = "RAD";
  r.findings = "右肺上叶见一约8mm磨玻璃结节。\n纵隔窗未见肿大淋巴结 | 无胸腔积液 ^_^ & C:\\path";
  r.impression = "右肺上叶磨玻璃结节，建议3个月后复查。";
  r.reader_user = "reader-a-rad";
  r.reader_name = "Li^Wei=李^伟";
  r.signed_report_pointer = "rdg:report/rp-7f3a/v1";
  return r;
}

TEST(Hl7ReportTest, RdgsOwnParserReadsTheReportBack) {
  const std::string message = BuildReportOru(Report());
  const LabParseOutcome parsed = ParseLabMessage(message);
  ASSERT_TRUE(parsed.message.has_value())
      << (parsed.rejection ? parsed.rejection->reason : "") << "\n"
      << message;
  const LabMessage& m = *parsed.message;
  EXPECT_EQ(m.header.message_type, "ORU^R01^ORU_R01");
  EXPECT_EQ(m.header.version, "2.5.1");
  EXPECT_EQ(m.header.charset, "UNICODE UTF-8");
  EXPECT_EQ(m.header.control_id, "RDG7f3a2b91c0d4e5");
  EXPECT_EQ(m.header.message_time, "20261201181532+0800");  // Asia/Shanghai
  EXPECT_EQ(m.patient_id, "P-0042");
  EXPECT_EQ(m.patient_id_issuer, "清河镇卫生院");
  // The ideographic name first, as a Chinese HIS shows it (the parser keeps every component).
  EXPECT_EQ(m.patient_name, "张^三^^^^^L^I");
  EXPECT_EQ(m.birth_date, "19560312");
  EXPECT_EQ(m.sex, "M");
  ASSERT_EQ(m.orders.size(), 1u);
  const LabOrder& o = m.orders[0];
  EXPECT_EQ(o.placer_order_number, "A20261201-7");
  EXPECT_EQ(o.filler_order_number, "ex-4b1d9e^RDG");  // assigned by RDG
  EXPECT_EQ(o.service_code, "CT_CHEST");
  EXPECT_EQ(o.service_text, "胸部CT平扫");
  EXPECT_EQ(o.observed_at, "20261201093000");
  EXPECT_EQ(o.result_status, "F");
  ASSERT_EQ(o.observations.size(), 3u);
  EXPECT_EQ(o.observations[0].code, "59776-5");
  EXPECT_EQ(o.observations[0].value_type, "FT");
  EXPECT_EQ(o.observations[0].value, Report().findings);  // escapes and line breaks round-trip
  EXPECT_EQ(o.observations[1].code, "19005-8");
  EXPECT_EQ(o.observations[1].value, Report().impression);
  EXPECT_THAT(o.observations[1].abnormal_flags, ::testing::IsEmpty());
  EXPECT_EQ(o.observations[1].result_status, "F");
  EXPECT_EQ(o.observations[1].observed_at, "20261201181530+0800");
  EXPECT_EQ(o.observations[2].value_type, "RP");
  EXPECT_THAT(o.observations[2].value, HasSubstr("rdg:report/rp-7f3a/v1"));
}

TEST(Hl7ReportTest, TheReaderIsThePrincipalResultInterpreter) {
  const std::string message = BuildReportOru(Report());
  int obr_segments = 0;
  for (absl::string_view segment : absl::StrSplit(message, '\r')) {
    if (!absl::StartsWith(segment, "OBR|")) continue;
    ++obr_segments;
    const std::vector<absl::string_view> fields = absl::StrSplit(segment, '|');
    ASSERT_GT(fields.size(), 32u) << segment;
    EXPECT_EQ(fields[22], "20261201181530+0800");  // results reported
    EXPECT_EQ(fields[24], "RAD");
    EXPECT_EQ(fields[25], "F");
    EXPECT_EQ(fields[32], "reader-a-rad&李&伟");
  }
  EXPECT_EQ(obr_segments, 1);  // the checks above ran
  EXPECT_THAT(message,
              HasSubstr("PID|1||P-0042^^^清河镇卫生院||张^三^^^^^L^I~Zhang^San^^^^^L^A||"));
  EXPECT_EQ(message.back(), '\r');
  EXPECT_THAT(message, Not(HasSubstr("\n")));
}

TEST(Hl7ReportTest, LineEndsOfAnyStyleAreOneBreakAndControlCharactersCannotEndAFrame) {
  ReportMessageInput r = Report();
  r.impression = "一\r\n二\r三\n四\x0b五\x1c六";
  const std::string message = BuildReportOru(r);
  EXPECT_EQ(message.find_first_of("\x0b\x1c\n"), std::string::npos);
  const LabParseOutcome parsed = ParseLabMessage(message);
  ASSERT_TRUE(parsed.message.has_value());
  EXPECT_EQ(parsed.message->orders[0].observations[1].value, "一\n二\n三\n四\uFFFD五\uFFFD六");
}

TEST(Hl7ReportTest, AnAmendedCriticalReportIsACorrectionFlaggedAA) {
  ReportMessageInput r = Report();
  r.amended = true;
  r.critical = true;
  r.findings.clear();
  r.amendment_reason = "补充：左肺下叶另见一4mm实性结节。";
  const LabParseOutcome parsed = ParseLabMessage(BuildReportOru(r));
  ASSERT_TRUE(parsed.message.has_value());
  const LabOrder& o = parsed.message->orders[0];
  EXPECT_EQ(o.result_status, "C");
  ASSERT_EQ(o.observations.size(), 3u);  // impression, addendum, pointer (no empty findings)
  EXPECT_EQ(o.observations[0].code, "19005-8");
  EXPECT_THAT(o.observations[0].abnormal_flags, ::testing::ElementsAre("AA"));
  EXPECT_EQ(o.observations[0].result_status, "C");
  EXPECT_EQ(o.observations[1].code, "55107-7");
  EXPECT_EQ(o.observations[1].value, r.amendment_reason);
}

}  // namespace
}  // namespace rdg::formats
