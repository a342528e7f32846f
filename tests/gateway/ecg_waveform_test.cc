#include "gateway/formats/ecg_waveform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gateway/formats/dicom_parser.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::formats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Sample(const std::string& name) { return std::string(RDG_PYDICOM_FILES) + "/" + name; }

// Damaged and re-encoded copies of waveform_ecg.dcm, written once per suite by pydicom (the tests
// themselves never touch DCMTK). Each entry: file name, then the Python edit applied to `ds`.
constexpr const char* kVariantScript = R"PY(
import array, sys, pydicom
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRBigEndian
src, out = sys.argv[1], sys.argv[2]
def load():
    return pydicom.dcmread(src)
def save(ds, name):
    ds.save_as(out + '/' + name, write_like_original=True)

ds = load(); w = ds.WaveformSequence[0]; w.WaveformData = w.WaveformData[:-2]
save(ds, 'short_data.dcm')
ds = load(); ds.WaveformSequence[0].NumberOfWaveformChannels = 0; save(ds, 'zero_channels.dcm')
ds = load(); ds.WaveformSequence[0].NumberOfWaveformChannels = 11; save(ds, 'eleven_channels.dcm')
ds = load(); del ds.WaveformSequence; save(ds, 'no_waveforms.dcm')
ds = load(); ds.WaveformSequence[0].WaveformBitsAllocated = 12; save(ds, 'bits12.dcm')
ds = load(); ds.WaveformSequence[1].WaveformSampleInterpretation = 'MB'; save(ds, 'mulaw.dcm')
ds = load(); ds.WaveformSequence[0].SamplingFrequency = 0; save(ds, 'zero_hz.dcm')
ds = load(); del ds.WaveformSequence[1].ChannelDefinitionSequence[2].ChannelSourceSequence
save(ds, 'no_label.dcm')
ds = load(); c = ds.WaveformSequence[0].ChannelDefinitionSequence[2]
del c.ChannelSourceSequence; c.ChannelLabel = 'III'; save(ds, 'channel_label.dcm')
ds = load(); c = ds.WaveformSequence[0].ChannelDefinitionSequence[6].ChannelSourceSequence[0]
del c.CodeMeaning; c.CodeValue = '2:3'; c.CodingSchemeDesignator = 'MDC'; save(ds, 'mdc_code.dcm')
ds = load(); c = ds.WaveformSequence[0].ChannelDefinitionSequence[0].ChannelSourceSequence[0]
c.CodeMeaning = '  Esophageal  '; save(ds, 'odd_label.dcm')
ds = load(); ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.9.1.2'
ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID; save(ds, 'general_ecg.dcm')
ds = load()
for c in ds.WaveformSequence[0].ChannelDefinitionSequence:
    c.ChannelSensitivity = '0.00125'; c.ChannelSensitivityUnitsSequence[0].CodeValue = 'mV'
    c.ChannelBaseline = '-10'; c.ChannelSensitivityCorrectionFactor = '2'
save(ds, 'millivolts.dcm')
ds = load(); ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
ds.is_implicit_VR = True; save(ds, 'implicit.dcm')
ds = load(); ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
ds.is_little_endian = False
for w in ds.WaveformSequence:  # pydicom writes OW bytes as given: swap them for big endian
    a = array.array('h', w.WaveformData); a.byteswap(); w.WaveformData = a.tobytes()
save(ds, 'big_endian.dcm')
ds = load(); w = ds.WaveformSequence[1]  # 8-bit signed copy of the median beats
a = array.array('h', w.WaveformData)
w.WaveformData = array.array('b', [max(-128, min(127, v // 8)) for v in a]).tobytes()
w['WaveformData'].VR = 'OB'; w.WaveformBitsAllocated = 8; w.WaveformSampleInterpretation = 'SB'
for c in w.ChannelDefinitionSequence: c.ChannelSensitivity = '10'
save(ds, 'eight_bit.dcm')
)PY";

class EcgWaveformTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitDicomToolkit().ok());
    variants_ = new testing::TempDir();
    const std::string script = variants_->Write("make_variants.py", kVariantScript);
    const std::string command =
        "/usr/bin/python3 " + script + " " + Sample("waveform_ecg.dcm") + " " + variants_->path();
    ASSERT_EQ(std::system(command.c_str()), 0) << "pydicom could not write the test variants";
  }
  static void TearDownTestSuite() {
    delete variants_;
    variants_ = nullptr;
  }
  static std::string Variant(const std::string& name) { return variants_->Join(name); }

  //! Expects `name` to be rejected with INVALID_ARGUMENT mentioning `reason`.
  static void ExpectRejected(const std::string& name, const std::string& reason) {
    absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant(name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << name << ": " << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(reason)) << name;
  }

  static std::vector<std::string> Labels(const EcgGroup& group) {
    std::vector<std::string> labels;
    for (const EcgLead& lead : group.leads) labels.push_back(lead.label);
    return labels;
  }

  static testing::TempDir* variants_;
};

testing::TempDir* EcgWaveformTest::variants_ = nullptr;

TEST_F(EcgWaveformTest, DecodesTwelveLeadRecording) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Sample("waveform_ecg.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sop_class_uid, kTwelveLeadEcgStorage);
  ASSERT_EQ(r->groups.size(), 2u);
  EXPECT_EQ(r->rhythm_group, 0u);
  const EcgGroup& rhythm = r->groups[0];
  EXPECT_EQ(rhythm.label, "RHYTHM");
  EXPECT_EQ(rhythm.sampling_frequency_hz, 1000.0);
  EXPECT_THAT(Labels(rhythm), ElementsAre("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3",
                                          "V4", "V5", "V6"));
  for (const EcgLead& lead : rhythm.leads) {
    ASSERT_EQ(lead.microvolts.size(), 10000u) << lead.label;
    auto [lo, hi] = std::minmax_element(lead.microvolts.begin(), lead.microvolts.end());
    EXPECT_GT(*lo, -5000) << lead.label;  // within ±5 mV: a plausible surface ECG
    EXPECT_LT(*hi, 5000) << lead.label;
    EXPECT_GT(*hi - *lo, 300) << lead.label;  // and a visible QRS complex
  }
  // Stored 80, 90 and -40 × 1.25 µV (first samples of I, II and V6).
  EXPECT_FLOAT_EQ(rhythm.leads[0].microvolts[0], 100.0f);
  EXPECT_FLOAT_EQ(rhythm.leads[1].microvolts[0], 112.5f);
  EXPECT_FLOAT_EQ(rhythm.leads[11].microvolts[0], -50.0f);
  EXPECT_FLOAT_EQ(
      *std::max_element(rhythm.leads[1].microvolts.begin(), rhythm.leads[1].microvolts.end()),
      1137.5f);
  EXPECT_EQ(r->groups[1].label, "MEDIAN BEAT");
  EXPECT_EQ(r->groups[1].leads[0].microvolts.size(), 1200u);
}

TEST_F(EcgWaveformTest, BufferAndFileAgree) {
  const std::string bytes = testing::ReadFileBytes(Sample("waveform_ecg.dcm"));
  absl::StatusOr<EcgRecording> from_buffer = ParseEcgWaveformBuffer(bytes);
  absl::StatusOr<EcgRecording> from_file = ParseEcgWaveformFile(Sample("waveform_ecg.dcm"));
  ASSERT_TRUE(from_buffer.ok()) << from_buffer.status();
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  ASSERT_EQ(from_buffer->groups.size(), from_file->groups.size());
  for (size_t g = 0; g < from_file->groups.size(); ++g) {
    for (size_t c = 0; c < from_file->groups[g].leads.size(); ++c) {
      EXPECT_EQ(from_buffer->groups[g].leads[c].microvolts,
                from_file->groups[g].leads[c].microvolts);
    }
  }
}

TEST_F(EcgWaveformTest, TransferSyntaxesDecodeTheSameSamples) {
  absl::StatusOr<EcgRecording> reference = ParseEcgWaveformFile(Sample("waveform_ecg.dcm"));
  ASSERT_TRUE(reference.ok()) << reference.status();
  for (const char* name : {"implicit.dcm", "big_endian.dcm"}) {
    absl::StatusOr<EcgRecording> r = ParseEcgWaveformBuffer(testing::ReadFileBytes(Variant(name)));
    ASSERT_TRUE(r.ok()) << name << ": " << r.status();
    ASSERT_EQ(r->groups.size(), 2u) << name;
    EXPECT_THAT(Labels(r->groups[0]), ElementsAre("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2",
                                                  "V3", "V4", "V5", "V6"));
    for (size_t c = 0; c < 12; ++c) {
      EXPECT_EQ(r->groups[0].leads[c].microvolts, reference->groups[0].leads[c].microvolts)
          << name << " lead " << c;
    }
  }
}

TEST_F(EcgWaveformTest, ScalesUnitsBaselineAndCorrection) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant("millivolts.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  // (80 + -10) × 0.00125 mV × 2 = 0.175 mV.
  EXPECT_NEAR(r->groups[0].leads[0].microvolts[0], 175.0, 1e-3);
  EXPECT_NEAR(r->groups[0].leads[11].microvolts[0], (-40 - 10) * 2.5, 1e-3);
}

TEST_F(EcgWaveformTest, DecodesEightBitSignedSamples) {
  absl::StatusOr<EcgRecording> reference = ParseEcgWaveformFile(Sample("waveform_ecg.dcm"));
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant("eight_bit.dcm"));
  ASSERT_TRUE(reference.ok() && r.ok()) << r.status();
  const std::vector<float>& got = r->groups[1].leads[1].microvolts;
  const std::vector<float>& want = reference->groups[1].leads[1].microvolts;
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < got.size(); ++s) {
    // Stored v / 8 (floored) × 10 µV against v × 1.25 µV: equal within one 8-bit step.
    ASSERT_NEAR(got[s], want[s], 10.0) << "sample " << s;
  }
}

TEST_F(EcgWaveformTest, LabelsFromChannelLabelCodesOrAsGiven) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant("channel_label.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->groups[0].leads[2].label, "III");
  r = ParseEcgWaveformFile(Variant("mdc_code.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->groups[0].leads[6].label, "V1");
  r = ParseEcgWaveformFile(Variant("odd_label.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->groups[0].leads[0].label, "Esophageal");
}

TEST_F(EcgWaveformTest, AcceptsGeneralEcgSopClass) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant("general_ecg.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sop_class_uid, kGeneralEcgStorage);
  EXPECT_EQ(r->groups[0].leads.size(), 12u);
}

TEST_F(EcgWaveformTest, RejectsTruncatedWaveformData) {
  ExpectRejected("short_data.dcm",
                 "ECG waveform group 1: Waveform Data holds 239998 bytes but 12 channels × 10000 "
                 "samples × 16 bits need 240000; the recording is truncated or corrupted");
}

TEST_F(EcgWaveformTest, RejectsInconsistentGroups) {
  ExpectRejected("zero_channels.dcm", "Number of Waveform Channels (003A,0005) is missing or zero");
  ExpectRejected("eleven_channels.dcm", "Channel Definition Sequence (003A,0200) describes 12");
  ExpectRejected("no_waveforms.dcm", "no Waveform Sequence");
  ExpectRejected("bits12.dcm", "Waveform Bits Allocated (5400,1004) is 12");
  ExpectRejected("mulaw.dcm", "ECG waveform group 2: Waveform Sample Interpretation");
  ExpectRejected("zero_hz.dcm", "Sampling Frequency (003A,001A)");
  ExpectRejected("no_label.dcm", "ECG waveform group 2: channel 3 has no lead name");
}

TEST_F(EcgWaveformTest, RejectsOtherSopClasses) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Sample("CT_small.dcm"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("not an ECG waveform object"));
  EXPECT_FALSE(IsEcgSopClass("1.2.840.10008.5.1.4.1.1.2"));
  EXPECT_TRUE(IsEcgSopClass(kTwelveLeadEcgStorage));
  EXPECT_TRUE(IsEcgSopClass(kGeneralEcgStorage));
}

TEST_F(EcgWaveformTest, RejectsGarbageAndTruncatedFiles) {
  const std::string ecg = testing::ReadFileBytes(Sample("waveform_ecg.dcm"));
  for (const std::string& bytes :
       {std::string(), std::string("hello, this is not DICOM\n"), std::string(4096, '\xff'),
        ecg.substr(0, ecg.size() / 2), ecg.substr(0, 200), ecg.substr(0, ecg.size() - 1)}) {
    absl::StatusOr<EcgRecording> r = ParseEcgWaveformBuffer(bytes);
    ASSERT_FALSE(r.ok()) << bytes.size() << " bytes";
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  }
  EXPECT_THAT(ParseEcgWaveformBuffer("").status().message(), HasSubstr("empty"));
  absl::StatusOr<EcgRecording> missing = ParseEcgWaveformFile(Variant("does-not-exist.dcm"));
  EXPECT_TRUE(absl::IsInvalidArgument(missing.status())) << missing.status();
}

}  // namespace
}  // namespace rdg::formats
