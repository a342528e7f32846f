// A signed report as DICOM (documents/report_dicom): the SR and the Encapsulated PDF validate
// under dciodvfy (dicom3tools) without errors, dsrdump shows the findings, the impression and the
// verifying observer, RDG's own parser reads them back into the study with the Chinese text
// intact, UIDs are stable per report version, and an amendment names its predecessor.
#include "storage/documents/report_dicom.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "storage/formats/dicom_parser.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::documents {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kStudy[] = "1.2.826.0.1.3680043.8.498.7001";

ReportDocumentInput Report() {
  ReportDocumentInput r;
  r.patient_name = "Zhang^San=张^三";
  r.patient_id = "P-0042";
  r.issuer_of_patient_id = "清河镇卫生院";
  r.patient_birth_date = "19560312";
  r.patient_sex = "M";
  r.study_instance_uid = kStudy;
  r.study_date = "20261201";
  r.study_time = "093000";
  r.accession_number = "A20261201-7";
  r.study_description = "胸部CT平扫";
  r.document_key = "rp-7f3a/v1";
  r.findings = "右肺上叶见一约8mm磨玻璃结节，边界清。";
  r.impression = "右肺上叶磨玻璃结节，建议3个月后复查。";
  r.observer_name = "Li^Wei=李^伟";
  r.observer_user = "reader-a-rad";
  r.observer_organization = "清河县人民医院";
  r.signed_at = absl::FromCivil(absl::CivilSecond(2026, 12, 1, 10, 15, 30), absl::UTCTimeZone());
  absl::LoadTimeZone("Asia/Shanghai", &r.zone);
  r.evidence = {{"1.2.826.0.1.3680043.8.498.7002", "1.2.840.10008.5.1.4.1.1.2",
                 "1.2.826.0.1.3680043.8.498.7003"},
                {"1.2.826.0.1.3680043.8.498.7002", "1.2.840.10008.5.1.4.1.1.2",
                 "1.2.826.0.1.3680043.8.498.7004"}};
  r.software_version = "test";
  return r;
}

//! stdout and stderr of `command`, run through the shell.
std::string Shell(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>&1").c_str(), "r"), pclose);
  if (!pipe) return "cannot run " + command;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe.get())) out.append(buf.data(), n);
  return out;
}

//! dciodvfy's lines that are errors ("Error - …"); it exits 0 either way.
std::vector<std::string> ValidatorErrors(const std::string& said) {
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(said, '\n')) {
    if (absl::StartsWith(line, "Error")) errors.emplace_back(line);
  }
  return errors;
}

class ReportDicomTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(formats::InitDicomToolkit().ok()); }
  rdg::testing::TempDir dir_;
};

TEST_F(ReportDicomTest, TheSrValidatesAndShowsFindingsImpressionAndTheObserver) {
  auto sr = BuildReportSr(Report());
  ASSERT_TRUE(sr.ok()) << sr.status();
  const std::string path = dir_.Write("sr.dcm", *sr);

  const std::string validator = Shell("dciodvfy " + path);
  EXPECT_THAT(ValidatorErrors(validator), ::testing::IsEmpty()) << validator;
  EXPECT_THAT(validator, HasSubstr("BasicTextSR")) << validator;
  std::cout << "dciodvfy on the SR:\n" << validator;

  const std::string dump = Shell("dsrdump +Pl +Pc " + path);
  EXPECT_THAT(dump, HasSubstr("Basic Text SR Document"));
  EXPECT_THAT(dump, HasSubstr("COMPLETE"));
  EXPECT_THAT(dump, HasSubstr("VERIFIED"));
  EXPECT_THAT(dump, HasSubstr("李^伟"));  // the verifying observer
  EXPECT_THAT(dump, HasSubstr("清河县人民医院"));
  EXPECT_THAT(dump, HasSubstr("(reader-a-rad,99RDG,"));  // the observer's code: their user id
  EXPECT_THAT(dump, HasSubstr("Diagnostic Imaging Report"));
  EXPECT_THAT(dump, HasSubstr("右肺上叶见一约8mm磨玻璃结节"));
  EXPECT_THAT(dump, HasSubstr("建议3个月后复查"));
  EXPECT_THAT(dump, Not(HasSubstr("Critical")));
  std::cout << "dsrdump +Pl +Pc:\n" << dump;
}

TEST_F(ReportDicomTest, RdgsOwnParserReadsTheSrIntoTheSameStudyAndPatient) {
  auto sr = BuildReportSr(Report());
  ASSERT_TRUE(sr.ok()) << sr.status();
  auto summary = formats::ParseDicomFile(dir_.Write("sr.dcm", *sr));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->study_instance_uid, kStudy);
  EXPECT_EQ(summary->sop_class_uid, "1.2.840.10008.5.1.4.1.1.88.11");
  EXPECT_EQ(summary->modality, "SR");
  EXPECT_EQ(summary->patient_name, "Zhang^San=张^三");
  EXPECT_EQ(summary->patient_id, "P-0042");
  EXPECT_EQ(summary->patient_id_issuer, "清河镇卫生院");
  EXPECT_EQ(summary->study_description, "胸部CT平扫");
  EXPECT_EQ(summary->transfer_syntax_uid, "1.2.840.10008.1.2.1");
  EXPECT_TRUE(summary->has_meta_header);
  EXPECT_EQ(summary->sop_instance_uid, UidsOf(kStudy, "rp-7f3a/v1").sr_sop_instance_uid);
  EXPECT_EQ(summary->series_instance_uid, UidsOf(kStudy, "rp-7f3a/v1").sr_series_instance_uid);
}

TEST_F(ReportDicomTest, OneReportVersionAlwaysGivesTheSameInstance) {
  auto a = BuildReportSr(Report());
  auto b = BuildReportSr(Report());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);  // a retried push sends a duplicate, never a second report
  ReportDocumentInput next = Report();
  next.document_key = "rp-7f3a/v2";
  EXPECT_NE(UidsOf(kStudy, "rp-7f3a/v1").sr_sop_instance_uid,
            UidsOf(kStudy, "rp-7f3a/v2").sr_sop_instance_uid);
  EXPECT_EQ(UidsOf(kStudy, "rp-7f3a/v1").sr_series_instance_uid,
            UidsOf(kStudy, "rp-7f3a/v2").sr_series_instance_uid);
  for (const std::string& uid : {UidsOf(kStudy, "k").sr_sop_instance_uid,
                                 UidsOf(kStudy, "k").pdf_sop_instance_uid, DerivedUid({"x"})}) {
    EXPECT_THAT(uid, StartsWith("2.25."));
    EXPECT_LE(uid.size(), 64u);
    EXPECT_EQ(uid.find_first_not_of("0123456789.", 0), std::string::npos) << uid;
  }
}

TEST_F(ReportDicomTest, AnAmendmentNamesItsPredecessorAndCarriesTheAddendum) {
  ReportDocumentInput amended = Report();
  amended.document_key = "rp-91bc/v2";
  amended.predecessor_key = "rp-7f3a/v1";
  amended.amendment_reason = "补充：左肺下叶另见一4mm实性结节。";
  amended.critical = true;
  auto sr = BuildReportSr(amended);
  ASSERT_TRUE(sr.ok()) << sr.status();
  const std::string path = dir_.Write("amended.dcm", *sr);
  const std::string validator = Shell("dciodvfy " + path);
  EXPECT_THAT(ValidatorErrors(validator), ::testing::IsEmpty()) << validator;
  const std::string dump = Shell("dsrdump +Pl +Pc " + path);  // long values in full, codes
  EXPECT_THAT(dump, HasSubstr("补充：左肺下叶另见一4mm实性结节"));
  EXPECT_THAT(dump, HasSubstr("Critical result communicated"));
  const std::string tags =
      Shell("dcmdump +P PredecessorDocumentsSequence +P SOPInstanceUID " + path);
  EXPECT_THAT(tags, HasSubstr(UidsOf(kStudy, "rp-7f3a/v1").sr_sop_instance_uid)) << tags;
}

TEST_F(ReportDicomTest, WhatAReportMustHaveIsNamed) {
  ReportDocumentInput r = Report();
  r.impression.clear();
  EXPECT_THAT(BuildReportSr(r).status().message(), HasSubstr("no impression"));
  r = Report();
  r.study_instance_uid.clear();
  EXPECT_THAT(BuildReportSr(r).status().message(), HasSubstr("Study Instance UID"));
  r = Report();
  r.observer_organization.clear();
  EXPECT_THAT(BuildReportSr(r).status().message(), HasSubstr("verifying observer"));
  r = Report();
  r.findings.clear();  // findings may be empty: the SR then has the impression only
  auto sr = BuildReportSr(r);
  ASSERT_TRUE(sr.ok()) << sr.status();
  EXPECT_THAT(ValidatorErrors(Shell("dciodvfy " + dir_.Write("short.dcm", *sr))),
              ::testing::IsEmpty());
}

TEST_F(ReportDicomTest, OddValuesCopiedFromTheModalityDoNotKeepTheReportOut) {
  ReportDocumentInput r = Report();
  r.study_description = std::string(30, 'X') +
                        "胸部CT平扫，双肺及纵隔，增强扫描后延迟期重建，层厚1mm";  // over LO's 64
  r.study_time = "0930";  // a short TM a modality wrote
  r.observer_name = "Ouyang^Mingzhe=" + std::string(30, 'A') + "欧阳^明哲";
  auto sr = BuildReportSr(r);
  ASSERT_TRUE(sr.ok()) << sr.status();
  auto summary = formats::ParseDicomFile(dir_.Write("odd.dcm", *sr));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->study_description, r.study_description);
}

TEST_F(ReportDicomTest, TheEncapsulatedPdfValidatesAndHoldsThePdfBytes) {
  const std::string pdf =
      "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
      "2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
  ASSERT_EQ(pdf.size() % 2, 1u);  // odd: padded in DICOM, its length attribute says where it ends
  auto doc = BuildReportPdf(Report(), pdf);
  ASSERT_TRUE(doc.ok()) << doc.status();
  const std::string path = dir_.Write("pdf.dcm", *doc);
  const std::string validator = Shell("dciodvfy " + path);
  EXPECT_THAT(ValidatorErrors(validator), ::testing::IsEmpty()) << validator;
  EXPECT_THAT(validator, HasSubstr("EncapsulatedPDF")) << validator;
  std::cout << "dciodvfy on the PDF:\n" << validator;

  const std::string back = dir_.path() + "/back.pdf";
  Shell("dcm2pdf " + path + " " + back);
  EXPECT_THAT(Shell("cat " + back), StartsWith(pdf));
  auto summary = formats::ParseDicomFile(path);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->study_instance_uid, kStudy);
  EXPECT_EQ(summary->modality, "DOC");
  EXPECT_EQ(summary->patient_name, "Zhang^San=张^三");
  EXPECT_EQ(summary->sop_instance_uid, UidsOf(kStudy, "rp-7f3a/v1").pdf_sop_instance_uid);

  EXPECT_THAT(BuildReportPdf(Report(), "<html>").status().message(), HasSubstr("not a PDF"));
}

}  // namespace
}  // namespace rdg::documents
