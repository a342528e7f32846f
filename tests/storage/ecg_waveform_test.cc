#include "storage/formats/ecg_waveform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/formats/dicom_parser.h"
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
ds = load(); ds.SpecificCharacterSet = 'GB18030'; ds.PatientName = '王^芳'
ds.InstitutionName = '武汉市江夏区第一人民医院'; del ds.PatientAge; del ds.AcquisitionDateTime
del ds.WaveformAnnotationSequence; save(ds, 'chinese.dcm')
ds = load()
mdc = {'RR Interval': ('MDC_ECG_HEART_RATE', '72', '/min'),
       'PR Interval': ('MDC_ECG_TIME_PD_PR', '0.158', 's'),
       'QTc Interval': ('MDC_ECG_TIME_PD_QTc', '412', 'ms'),
       'QT Interval': ('MDC_ECG_TIME_PD_QT_GL', '396', 'ms'),
       'QRS Duration': ('QRS Duration', '0', 'ms'),
       'P Axis': ('MDC_ECG_ANGLE_P_FRONT', '60', 'ms')}
for a in ds.WaveformAnnotationSequence:
    if 'ConceptNameCodeSequence' in a and a.ConceptNameCodeSequence[0].CodeMeaning in mdc:
        meaning, value, unit = mdc[a.ConceptNameCodeSequence[0].CodeMeaning]
        a.ConceptNameCodeSequence[0].CodeMeaning = meaning
        a.NumericValue = value; a.MeasurementUnitsCodeSequence[0].CodeValue = unit
ds.WaveformAnnotationSequence[0].UnformattedTextValue = 'Sinus rhythm\r\nLeft axis deviation'
save(ds, 'mdc_measures.dcm')
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

TEST_F(EcgWaveformTest, ReadsPatientRecordingAndCartMeasurements) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Sample("waveform_ecg.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  const EcgDetails& d = r->details;
  EXPECT_EQ(d.patient_name, "Anonymous");
  EXPECT_EQ(d.patient_id, "642341");
  EXPECT_EQ(d.sex, "F");
  EXPECT_EQ(d.birth_date, "19710123");
  EXPECT_EQ(d.age, "042Y");
  EXPECT_EQ(d.recorded_at, "20130125105919");
  EXPECT_EQ(d.institution, "E. O. Ospedali Galliera");
  EXPECT_EQ(d.device, "Mortara Instrument, Inc. el250");
  EXPECT_DOUBLE_EQ(d.filter_low_hz, 0.05);
  EXPECT_DOUBLE_EQ(d.filter_high_hz, 300);
  EXPECT_DOUBLE_EQ(d.notch_hz, 0);  // written as 0.0: no notch filter
  const EcgMeasurements& m = d.measurements;
  ASSERT_TRUE(m.heart_rate_bpm.has_value());
  EXPECT_NEAR(*m.heart_rate_bpm, 60000.0 / 982, 1e-9);  // from the annotated RR interval
  EXPECT_EQ(m.heart_rate_source, "RR");
  EXPECT_EQ(m.pr_ms, 161);
  EXPECT_EQ(m.qrs_ms, 75);
  EXPECT_EQ(m.qt_ms, 368);
  EXPECT_EQ(m.qtc_ms, 370);
  EXPECT_EQ(m.p_axis_deg, 74);
  EXPECT_EQ(m.qrs_axis_deg, 52);
  EXPECT_EQ(m.t_axis_deg, 57);
  EXPECT_THAT(m.statements, ElementsAre("RITMO SINUSALE", "ECG NORMALE"));
}

TEST_F(EcgWaveformTest, ChineseNamesAndAHeartRateComputedFromLeadTwo) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant("chinese.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  const EcgDetails& d = r->details;
  EXPECT_EQ(d.patient_name, "王芳");
  EXPECT_EQ(d.institution, "武汉市江夏区第一人民医院");
  EXPECT_EQ(d.recorded_at, "20130125105919");  // Content Date and Time
  EXPECT_EQ(d.age, "042Y");                    // from the birth date
  ASSERT_TRUE(d.measurements.heart_rate_bpm.has_value());
  EXPECT_EQ(d.measurements.heart_rate_source, "computed");
  // The cart measured an RR interval of 982 ms (61 /min) on this recording.
  EXPECT_NEAR(*d.measurements.heart_rate_bpm, 61.1, 2.0);
  EXPECT_FALSE(d.measurements.pr_ms.has_value());
  EXPECT_TRUE(d.measurements.statements.empty());
}

TEST_F(EcgWaveformTest, MeasurementsByMdcNameInTheirUnitsOnly) {
  absl::StatusOr<EcgRecording> r = ParseEcgWaveformFile(Variant("mdc_measures.dcm"));
  ASSERT_TRUE(r.ok()) << r.status();
  const EcgMeasurements& m = r->details.measurements;
  EXPECT_EQ(m.heart_rate_bpm, 72);
  EXPECT_EQ(m.heart_rate_source, "device");
  EXPECT_NEAR(m.pr_ms.value_or(0), 158, 1e-9);  // given in seconds
  EXPECT_EQ(m.qtc_ms, 412);
  EXPECT_EQ(m.qt_ms, 396);
  EXPECT_FALSE(m.qrs_ms.has_value());      // 0 ms: a placeholder, not a measurement
  EXPECT_FALSE(m.p_axis_deg.has_value());  // an angle in ms: not trusted
  EXPECT_EQ(m.t_axis_deg, 57);
  // A statement of two lines reads as one, never with its line breaks as U+FFFD.
  EXPECT_THAT(m.statements, ElementsAre("Sinus rhythm; Left axis deviation", "ECG NORMALE"));
}

//! A synthetic lead: narrow R waves every `rr_s` seconds, broad T waves, baseline wander, noise.
EcgLead SyntheticLead(double hz, double seconds, double rr_s) {
  EcgLead lead{"II", {}};
  const auto n = static_cast<size_t>(hz * seconds);
  uint32_t noise = 12345;
  for (size_t i = 0; i < n; ++i) {
    const double t = i / hz;
    const double phase = std::fmod(t, rr_s);
    double uv = 300 * std::sin(2 * M_PI * 0.3 * t);                  // wander
    uv += 1200 * std::exp(-std::pow((phase - 0.2) / 0.012, 2));      // R
    uv += 350 * std::exp(-std::pow((phase - 0.2 - 0.3) / 0.06, 2));  // T
    noise = noise * 1103515245 + 12345;
    uv += static_cast<double>((noise >> 16) % 61) - 30;  // ±30 µV
    lead.microvolts.push_back(static_cast<float>(uv));
  }
  return lead;
}

TEST(EcgHeartRateTest, FindsTheRateOfRegularBeats) {
  for (double hz : {250.0, 500.0, 1000.0}) {
    for (double bpm : {45.0, 75.0, 150.0}) {
      std::optional<double> rate = EstimateHeartRate(SyntheticLead(hz, 10, 60 / bpm), hz);
      ASSERT_TRUE(rate.has_value()) << hz << " Hz, " << bpm;
      EXPECT_NEAR(*rate, bpm, bpm * 0.02) << hz << " Hz";
    }
  }
}

TEST(EcgHeartRateTest, NoRateWithoutARhythm) {
  EXPECT_FALSE(EstimateHeartRate(EcgLead{"II", std::vector<float>(5000, 0.0f)}, 500));
  EXPECT_FALSE(EstimateHeartRate(SyntheticLead(500, 1.5, 0.8), 500));  // too short
  EXPECT_FALSE(EstimateHeartRate(SyntheticLead(500, 10, 0.8), 0));
  EXPECT_FALSE(EstimateHeartRate(SyntheticLead(500, 10, 0.8), std::nan("")));
  EcgLead hostile{"II", std::vector<float>(5000, std::numeric_limits<float>::infinity())};
  EXPECT_FALSE(EstimateHeartRate(hostile, 500));
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
