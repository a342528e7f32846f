#include "storage/formats/dicom_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/mocks/temp_dir.h"

namespace rdg::formats {
namespace {

using ::testing::HasSubstr;

class DicomParserTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitDicomToolkit().ok()); }
  static std::string Sample(const std::string& name) {
    return std::string(RDG_PYDICOM_FILES) + "/" + name;
  }
  testing::TempDir dir_;
};

TEST_F(DicomParserTest, ExtractsPatientStudySeriesInstance) {
  auto s = ParseDicomFile(Sample("CT_small.dcm"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->modality, "CT");
  EXPECT_EQ(s->patient_id, "1CT1");
  EXPECT_EQ(s->patient_name, "CompressedSamples^CT1");
  EXPECT_EQ(s->sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
  EXPECT_EQ(s->study_instance_uid, "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322");
  EXPECT_EQ(s->sop_instance_uid, "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322");
  EXPECT_EQ(s->transfer_syntax_uid, "1.2.840.10008.1.2.1");
  EXPECT_EQ(s->study_date, "20040119");
  EXPECT_TRUE(s->has_meta_header);
  EXPECT_EQ(s->patient_age, "");  // written as 000Y: the devices' "unknown"
}

TEST_F(DicomParserTest, ReadsEcgWaveformObjects) {
  auto s = ParseDicomFile(Sample("waveform_ecg.dcm"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->modality, "ECG");
  EXPECT_EQ(s->sop_class_uid, "1.2.840.10008.5.1.4.1.1.9.1.1");  // 12-lead ECG
  EXPECT_EQ(s->patient_age, "042Y");
}

TEST_F(DicomParserTest, RejectsTruncatedFile) {
  std::string bytes = testing::ReadFileBytes(Sample("CT_small.dcm"));
  auto s = ParseDicomFile(dir_.Write("half.dcm", bytes.substr(0, bytes.size() / 2)));
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(s.status()));
  EXPECT_THAT(s.status().message(), HasSubstr("complete"));
}

TEST_F(DicomParserTest, RejectsNonDicom) {
  for (const std::string& bytes : {std::string("hello, this is a lab report in plain text\n"),
                                   std::string(4096, '\xff'), std::string()}) {
    auto s = ParseDicomFile(dir_.Write("x.dcm", bytes));
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  }
}

TEST_F(DicomParserTest, RejectsMissingUids) {
  auto s = ParseDicomFile(Sample("meta_missing_tsyntax.dcm"));  // no SOP Instance UID
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("SOP Instance UID"));
}

TEST_F(DicomParserTest, RejectsDicomdir) {
  auto s = ParseDicomFile(Sample("dicomdirtests/DICOMDIR"));
  EXPECT_FALSE(s.ok());
}

TEST_F(DicomParserTest, ErrorsCarryNoPatientData) {
  std::string bytes = testing::ReadFileBytes(Sample("CT_small.dcm"));
  auto s = ParseDicomFile(dir_.Write("cut.dcm", bytes.substr(0, 600)));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), ::testing::Not(HasSubstr("CompressedSamples")));
}

}  // namespace
}  // namespace rdg::formats
