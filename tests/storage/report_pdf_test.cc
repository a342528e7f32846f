#include "storage/documents/report_pdf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::documents {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

//! A delivered report as the gateway sends it: the exam of 张三 read by reader-a-rad.
rdg::v1::DeliveredReport DeliveredSample() {
  rdg::v1::DeliveredReport d;
  d.set_platform_name("示范省远程诊断平台");
  d.set_reader_institution_name("清水县人民医院");
  auto* exam = d.mutable_exam();
  exam->set_exam_id("EX-1");
  exam->set_exam_type("CT");
  exam->add_modalities("CT");
  exam->set_body_part("CHEST");
  exam->set_study_date("20261129");
  exam->set_study_description("胸部CT平扫");
  exam->set_origin_institution("clinic-a1");
  exam->set_origin_institution_name("双桥镇卫生院");
  auto* patient = exam->mutable_patient();
  patient->set_name("张^三");
  patient->set_display_name("张三");
  patient->set_patient_id("P-0001");
  patient->set_sex("M");
  patient->set_age("045Y");
  patient->set_birth_date("19810314");
  patient->set_national_id("420115198103140011");
  auto* report = d.mutable_report();
  report->set_report_id("RPT-1");
  report->set_version(1);
  auto* c = report->mutable_content();
  c->set_exam_id("EX-1");
  c->set_findings("右肺下叶见一枚 8 mm 实性结节。\n余肺野清晰。");
  c->set_impression("右肺下叶结节，建议 3 个月后复查。");
  c->set_status(rdg::v1::FINAL_REPORT);
  c->set_reader_user("reader-a-rad");
  c->set_reader_institution("county-a");
  c->mutable_signed_at()->set_seconds(1796014800);  // 2026-11-30 05:00:00 UTC
  return d;
}

ReportPrintout Verified() {
  ReportPrintout p;
  p.signature_verified = true;
  p.signature_detail = "signed by reader-a-rad of county-a";
  p.signer_name = "reader-a-rad";
  p.signer_fingerprint = "AB:CD:EF";
  absl::LoadTimeZone("Asia/Shanghai", &p.zone);
  return p;
}

class ReportPdfTest : public ::testing::Test {
 protected:
  //! The text of `pdf` as poppler's pdftotext reads it (what a search or a screen reader gets).
  std::string Text(const std::string& pdf) {
    const std::string path = dir_.Write("report.pdf", pdf);
    std::unique_ptr<FILE, decltype(&pclose)> pipe(
        popen(("pdftotext -layout " + path + " - 2>&1").c_str(), "r"), pclose);
    std::string text;
    std::array<char, 4096> buf;
    while (size_t n = fread(buf.data(), 1, buf.size(), pipe.get())) text.append(buf.data(), n);
    return text;
  }

  testing::TempDir dir_;
};

TEST_F(ReportPdfTest, ShowsPatientExamReportReaderAndSignature) {
  absl::StatusOr<std::string> pdf = RenderReportPdf(DeliveredSample(), Verified());
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  EXPECT_EQ(pdf->substr(0, 5), "%PDF-");
  const std::string text = Text(*pdf);
  for (const char* expected : {"示范省远程诊断平台",
                               "诊断报告单",
                               "清水县人民医院",
                               "张三",
                               "男",
                               "45岁",
                               "P-0001",
                               "1981-03-14",
                               "420115********0011",
                               "双桥镇卫生院",
                               "胸部CT平扫",
                               "CHEST",
                               "2026-11-29",
                               "右肺下叶见一枚 8 mm 实性结节。",
                               "余肺野清晰。",
                               "右肺下叶结节，建议 3 个月后复查。",
                               "reader-a-rad",
                               "正式报告 FINAL",
                               "2026-11-30 13:00:00 CST",
                               "已验证",
                               "signed by reader-a-rad of county-a",
                               "AB:CD:EF",
                               "第1页/共1页",
                               "RPT-1"}) {
    EXPECT_THAT(text, HasSubstr(expected));
  }
  EXPECT_THAT(text, Not(HasSubstr("420115198103140011")));  // the ID is masked on paper
  EXPECT_THAT(text, Not(HasSubstr("危急值")));
}

TEST_F(ReportPdfTest, CriticalAmendedAndUnverifiedSaySo) {
  rdg::v1::DeliveredReport d = DeliveredSample();
  d.set_urgent(true);
  d.mutable_acknowledge_by()->set_seconds(1796016600);  // 05:30 UTC
  d.mutable_report()->mutable_content()->set_critical(true);
  d.mutable_report()->mutable_content()->set_status(rdg::v1::AMENDED_REPORT);
  d.mutable_report()->mutable_content()->set_supersedes_report_id("RPT-0");
  ReportPrintout p = Verified();
  p.signature_verified = false;
  p.signature_detail = "the signer certificate does not chain to the platform CA";
  absl::StatusOr<std::string> pdf = RenderReportPdf(d, p);
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  const std::string text = Text(*pdf);
  EXPECT_THAT(text, HasSubstr("危急值 CRITICAL"));
  EXPECT_THAT(text, HasSubstr("请于 2026-11-30 13:30:00 CST 前确认收到"));
  EXPECT_THAT(text, HasSubstr("修订报告"));
  EXPECT_THAT(text, HasSubstr("AMENDED"));
  EXPECT_THAT(text, HasSubstr("取代报告 RPT-0"));
  EXPECT_THAT(text, HasSubstr("未通过验证"));
  EXPECT_THAT(text, HasSubstr("does not chain"));
}

TEST_F(ReportPdfTest, LongFindingsFlowOntoNumberedPages) {
  rdg::v1::DeliveredReport d = DeliveredSample();
  std::string findings;
  for (int i = 1; i <= 150; ++i) absl::StrAppend(&findings, "第 ", i, " 行所见。\n");
  d.mutable_report()->mutable_content()->set_findings(findings);
  absl::StatusOr<std::string> pdf = RenderReportPdf(d, Verified());
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  const std::string text = Text(*pdf);
  const size_t total_at = text.find("/共");
  ASSERT_NE(total_at, std::string::npos);
  const int pages = std::atoi(text.c_str() + total_at + 4);  // "/共" is 4 bytes
  ASSERT_GE(pages, 3);
  for (int page = 1; page <= pages; ++page) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("第", page, "页/共", pages, "页")));
  }
  EXPECT_THAT(text, HasSubstr("诊断报告单（续） 患者 张三 · 检查 EX-1"));
  for (int i = 1; i <= 150; ++i) {  // nothing lost or doubled at a page break
    const std::string line = absl::StrCat("第 ", i, " 行所见。\n");
    EXPECT_THAT(text, HasSubstr(line));
    EXPECT_EQ(text.find(line), text.rfind(line)) << line;
  }
  EXPECT_THAT(text, HasSubstr("右肺下叶结节"));
}

TEST_F(ReportPdfTest, HostileTextIsPrintedNotInterpreted) {
  rdg::v1::DeliveredReport d = DeliveredSample();
  auto* c = d.mutable_report()->mutable_content();
  c->set_impression("<b>bold?</b> & <span foreground=\"red\">x</span> \x01\x1b]0;t\x07 \xff");
  d.mutable_exam()->mutable_patient()->set_display_name("</span><big>王</big>");
  absl::StatusOr<std::string> pdf = RenderReportPdf(d, Verified());
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  const std::string text = Text(*pdf);
  EXPECT_THAT(text, HasSubstr("<b>bold?</b> & <span"));
  EXPECT_THAT(text, HasSubstr("</span><big>王</big>"));
}

TEST_F(ReportPdfTest, AnEmptyReportStillPrints) {
  absl::StatusOr<std::string> pdf = RenderReportPdf(rdg::v1::DeliveredReport(), ReportPrintout());
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  EXPECT_THAT(Text(*pdf), HasSubstr("诊断报告单"));
}

}  // namespace
}  // namespace rdg::documents
