#include "storage/formats/ecg_waveform.h"

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "storage/formats/dcmtk_values.h"
#include "storage/formats/ecg_details.h"

namespace rdg::formats {
namespace {

//! Bound on decoded samples (all groups, all channels): about 200 MB of floats. A 10 s 12-lead
//! recording at 1 kHz holds 120,000; anything near the cap is hostile or not a diagnostic ECG.
constexpr uint64_t kMaxTotalSamples = 50'000'000;

//! Standard lead names, indexed by the lead number shared by SCP-ECG ("5.6.3-9-N") and
//! ISO/IEEE 11073 MDC ("2:N") codes. Zero entries are not standard 12-lead names.
struct CodedLead {
  int number;
  absl::string_view name;
};
constexpr std::array<CodedLead, 12> kCodedLeads = {{
    {1, "I"},
    {2, "II"},
    {61, "III"},
    {62, "aVR"},
    {63, "aVL"},
    {64, "aVF"},
    {3, "V1"},
    {4, "V2"},
    {5, "V3"},
    {6, "V4"},
    {7, "V5"},
    {8, "V6"},
}};

std::string GroupPrefix(size_t group) { return absl::StrCat("ECG waveform group ", group, ": "); }

//! The standard name of a free-text lead description ("Lead I (Einthoven)", "aVR", "LEAD_V1"),
//! or empty when it is not one of the twelve standard leads.
std::string StandardLeadName(absl::string_view text) {
  std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (size_t paren = s.find('('); paren != std::string::npos) s.resize(paren);
  absl::string_view v = absl::StripAsciiWhitespace(s);
  for (absl::string_view prefix : {"mdc_ecg_lead_", "lead_", "lead-", "lead"}) {
    if (absl::ConsumePrefix(&v, prefix)) break;
  }
  v = absl::StripAsciiWhitespace(v);
  for (const CodedLead& lead : kCodedLeads) {
    if (absl::EqualsIgnoreCase(v, lead.name)) return std::string(lead.name);
  }
  return {};
}

//! The standard name of an SCP-ECG ("5.6.3-9-2") or MDC ("2:2", "131074") lead code, or empty.
std::string CodedLeadName(absl::string_view code) {
  int number = 0;
  if (absl::ConsumePrefix(&code, "5.6.3-9-") || absl::ConsumePrefix(&code, "2:")) {
    if (!absl::SimpleAtoi(code, &number)) return {};
  } else if (int mdc = 0; absl::SimpleAtoi(code, &mdc) && mdc > 131072) {
    number = mdc - 131072;  // MDC partition 2 (SCADA) code, 2 << 16 + term code
  }
  for (const CodedLead& lead : kCodedLeads) {
    if (lead.number == number) return std::string(lead.name);
  }
  return {};
}

//! The normalised label of one Channel Definition Sequence item; `channel` is 1-based.
absl::StatusOr<std::string> ChannelName(DcmItem& def, size_t group, size_t channel) {
  std::string meaning, code;
  if (DcmItem* source = FirstItem(def, DCM_ChannelSourceSequence)) {
    meaning = TrimmedString(*source, DCM_CodeMeaning);
    code = TrimmedString(*source, DCM_CodeValue);
  }
  std::string label = TrimmedString(def, DCM_ChannelLabel);
  // The code meaning is authoritative; the code value only stands in when the meaning is absent.
  for (const std::string& name : {StandardLeadName(meaning), StandardLeadName(label),
                                  meaning.empty() ? CodedLeadName(code) : std::string()}) {
    if (!name.empty()) return name;
  }
  for (const std::string* given : {&meaning, &label, &code}) {
    if (!given->empty()) return *given;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      GroupPrefix(group), "channel ", channel,
      " has no lead name (no Channel Source code meaning or value, no Channel Label (003A,0203))"));
}

//! Microvolts per unit of the Channel Sensitivity Units code; unknown units count as µV.
double UnitScale(absl::string_view ucum) {
  if (ucum == "V") return 1e6;
  if (ucum == "mV") return 1e3;
  if (ucum == "nV") return 1e-3;
  return 1.0;  // "uV", "µV" and missing units
}

//! value µV = (stored + baseline) × sensitivity × correction × unit scale (PS3.3 C.10.9.1.4.3).
struct ChannelScale {
  double baseline = 0;
  double factor = 1;
};

absl::StatusOr<ChannelScale> ChannelScaling(DcmItem& def, size_t group, size_t channel) {
  ChannelScale scale;
  scale.baseline = GetDecimal(def, DCM_ChannelBaseline).value_or(0.0);
  const double sensitivity = GetDecimal(def, DCM_ChannelSensitivity).value_or(1.0);
  const double correction = GetDecimal(def, DCM_ChannelSensitivityCorrectionFactor).value_or(1.0);
  std::string units;
  if (DcmItem* unit_item = FirstItem(def, DCM_ChannelSensitivityUnitsSequence)) {
    units = TrimmedString(*unit_item, DCM_CodeValue);
  }
  scale.factor = sensitivity * correction * UnitScale(units);
  // Any stored value must map to a finite float (the renderer and callers rely on it).
  const double largest = (std::abs(scale.baseline) + 65536.0) * std::abs(scale.factor);
  if (!std::isfinite(scale.baseline) || !std::isfinite(scale.factor) || !(largest < 1e30)) {
    return absl::InvalidArgumentError(
        absl::StrCat(GroupPrefix(group), "channel ", channel,
                     " has a Channel Sensitivity, Correction Factor or Baseline out of range"));
  }
  return scale;
}

//! Read access to Waveform Data held either as bytes (OB) or as host-order words (OW, which
//! DCMTK has already byte-swapped for big-endian transfer syntaxes).
class SampleSource {
 public:
  SampleSource(const Uint8* bytes, const Uint16* words, int bits, bool is_signed)
      : bytes_(bytes), words_(words), bits_(bits), signed_(is_signed) {}

  int32_t At(uint64_t index) const {
    if (bits_ == 8) {
      uint8_t b = bytes_ != nullptr ? bytes_[index]
                                    : static_cast<uint8_t>(words_[index / 2] >> (8 * (index % 2)));
      return signed_ ? static_cast<int8_t>(b) : b;
    }
    uint16_t w = words_ != nullptr
                     ? words_[index]
                     : static_cast<uint16_t>(bytes_[2 * index] | (bytes_[2 * index + 1] << 8));
    return signed_ ? static_cast<int16_t>(w) : w;
  }

 private:
  const Uint8* bytes_;
  const Uint16* words_;
  int bits_;
  bool signed_;
};

//! Shape of one multiplex group, read from its Waveform Sequence item.
struct GroupShape {
  uint32_t channels = 0;
  uint32_t samples = 0;
  double frequency = 0;
  int bits = 0;
  bool is_signed = true;
};

absl::StatusOr<GroupShape> ReadShape(DcmItem& item, size_t group) {
  GroupShape shape;
  Uint16 channels = 0, bits = 0;
  Uint32 samples = 0;
  item.findAndGetUint16(DCM_NumberOfWaveformChannels, channels);
  item.findAndGetUint32(DCM_NumberOfWaveformSamples, samples);
  item.findAndGetUint16(DCM_WaveformBitsAllocated, bits);
  shape.channels = channels;
  shape.samples = samples;
  shape.bits = bits;
  shape.frequency = GetDecimal(item, DCM_SamplingFrequency).value_or(0.0);
  const std::string prefix = GroupPrefix(group);
  if (shape.channels == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "Number of Waveform Channels (003A,0005) is missing or zero"));
  }
  if (shape.samples == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "Number of Waveform Samples (003A,0010) is missing or zero"));
  }
  if (!(shape.frequency > 0) || !std::isfinite(shape.frequency)) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "Sampling Frequency (003A,001A) is missing or not positive"));
  }
  if (shape.bits != 8 && shape.bits != 16) {
    return absl::InvalidArgumentError(absl::StrCat(prefix,
                                                   "Waveform Bits Allocated (5400,1004) is ",
                                                   shape.bits, "; only 8 and 16 are supported"));
  }
  const std::string interpretation = TrimmedString(item, DCM_WaveformSampleInterpretation);
  if (interpretation != "SS" && interpretation != "SB" && interpretation != "US" &&
      interpretation != "UB") {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix,
        "Waveform Sample Interpretation (5400,1006) must be SS, SB, US or UB (mu-law, A-law "
        "and missing values are not supported)"));
  }
  shape.is_signed = interpretation[0] == 'S';
  return shape;
}

//! The Waveform Data of one group, checked against the size its shape needs.
absl::StatusOr<SampleSource> ReadWaveformData(DcmItem& item, const GroupShape& shape,
                                              size_t group) {
  DcmElement* data = nullptr;
  const uint64_t need = uint64_t{shape.channels} * shape.samples * (shape.bits / 8);
  uint64_t have = 0;
  if (item.findAndGetElement(DCM_WaveformData, data).good() && data != nullptr) {
    have = data->getLength();
  }
  // OB values of odd length carry one padding byte.
  if (have != need && !(need % 2 == 1 && have == need + 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(GroupPrefix(group), "Waveform Data holds ", have, " bytes but ",
                     shape.channels, " channels × ", shape.samples, " samples × ", shape.bits,
                     " bits need ", need, "; the recording is truncated or corrupted"));
  }
  Uint8* bytes = nullptr;
  Uint16* words = nullptr;
  if (data->getUint8Array(bytes).good() && bytes != nullptr) {
    return SampleSource(bytes, nullptr, shape.bits, shape.is_signed);
  }
  if (data->getUint16Array(words).good() && words != nullptr) {
    return SampleSource(nullptr, words, shape.bits, shape.is_signed);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(GroupPrefix(group), "Waveform Data (5400,1010) cannot be read as OB or OW"));
}

//! Decodes one Waveform Sequence item; `group` is 1-based. Adds its samples to `total_samples`.
absl::StatusOr<EcgGroup> DecodeGroup(DcmItem& item, size_t group, uint64_t& total_samples) {
  absl::StatusOr<GroupShape> shape = ReadShape(item, group);
  if (!shape.ok()) return shape.status();
  DcmSequenceOfItems* defs = nullptr;
  const unsigned long defined =
      item.findAndGetSequence(DCM_ChannelDefinitionSequence, defs).good() && defs != nullptr
          ? defs->card()
          : 0;
  if (defined != shape->channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        GroupPrefix(group), "Number of Waveform Channels (003A,0005) is ", shape->channels,
        " but the Channel Definition Sequence (003A,0200) describes ", defined));
  }
  total_samples += uint64_t{shape->channels} * shape->samples;
  if (total_samples > kMaxTotalSamples) {
    return absl::InvalidArgumentError(absl::StrCat("the ECG waveforms hold more than ",
                                                   kMaxTotalSamples,
                                                   " samples; this is not a "
                                                   "diagnostic ECG recording the gateway accepts"));
  }
  absl::StatusOr<SampleSource> source = ReadWaveformData(item, *shape, group);
  if (!source.ok()) return source.status();

  EcgGroup out;
  out.label = TrimmedString(item, DCM_MultiplexGroupLabel);
  out.sampling_frequency_hz = shape->frequency;
  out.leads.resize(shape->channels);
  for (uint32_t c = 0; c < shape->channels; ++c) {
    DcmItem* def = defs->getItem(c);
    absl::StatusOr<std::string> name = ChannelName(*def, group, c + 1);
    if (!name.ok()) return name.status();
    absl::StatusOr<ChannelScale> scale = ChannelScaling(*def, group, c + 1);
    if (!scale.ok()) return scale.status();
    EcgLead& lead = out.leads[c];
    lead.label = *std::move(name);
    lead.microvolts.resize(shape->samples);
    for (uint32_t s = 0; s < shape->samples; ++s) {
      // Samples are interleaved: channel c of sample s sits at s × channels + c.
      const int32_t stored = source->At(uint64_t{s} * shape->channels + c);
      lead.microvolts[s] = static_cast<float>((stored + scale->baseline) * scale->factor);
    }
  }
  return out;
}

//! The first group with at least 2.5 s of samples and the most leads; failing that, the longest.
size_t PickRhythmGroup(const std::vector<EcgGroup>& groups) {
  auto seconds = [](const EcgGroup& g) {
    return g.leads.empty() ? 0.0 : g.leads[0].microvolts.size() / g.sampling_frequency_hz;
  };
  std::optional<size_t> best;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (seconds(groups[i]) < 2.5) continue;
    if (!best || groups[i].leads.size() > groups[*best].leads.size()) best = i;
  }
  if (best) return *best;
  size_t longest = 0;
  for (size_t i = 1; i < groups.size(); ++i) {
    if (seconds(groups[i]) > seconds(groups[longest])) longest = i;
  }
  return longest;
}

absl::StatusOr<EcgRecording> DecodeFile(DcmFileFormat& file) {
  DcmDataset* ds = file.getDataset();
  if (ds == nullptr || ds->card() == 0) {
    return absl::InvalidArgumentError("not a DICOM object: it contains no DICOM data elements");
  }
  EcgRecording recording;
  recording.sop_class_uid = TrimmedString(*ds, DCM_SOPClassUID);
  if (recording.sop_class_uid.empty() && file.getMetaInfo() != nullptr) {
    recording.sop_class_uid = TrimmedString(*file.getMetaInfo(), DCM_MediaStorageSOPClassUID);
  }
  if (!IsEcgSopClass(recording.sop_class_uid)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an ECG waveform object: SOP Class UID '", recording.sop_class_uid,
                     "' is neither 12-lead ECG (", kTwelveLeadEcgStorage, ") nor General ECG (",
                     kGeneralEcgStorage, ") Waveform Storage"));
  }
  DcmSequenceOfItems* waveforms = nullptr;
  if (ds->findAndGetSequence(DCM_WaveformSequence, waveforms).bad() || waveforms == nullptr ||
      waveforms->card() == 0) {
    return absl::InvalidArgumentError(
        "the ECG object has no Waveform Sequence (5400,0100): it carries no waveform to read");
  }
  uint64_t total_samples = 0;
  for (unsigned long i = 0; i < waveforms->card(); ++i) {
    absl::StatusOr<EcgGroup> group = DecodeGroup(*waveforms->getItem(i), i + 1, total_samples);
    if (!group.ok()) return group.status();
    recording.groups.push_back(*std::move(group));
  }
  recording.rhythm_group = PickRhythmGroup(recording.groups);
  ReadEcgDetails(*ds, recording);
  return recording;
}

absl::Status Unreadable(const OFCondition& cond) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a readable DICOM file (", cond.text(),
                   "); check that the file is complete and was exported as DICOM"));
}

}  // namespace

const EcgLead* FindLead(const EcgGroup& group, absl::string_view label) {
  for (const EcgLead& lead : group.leads) {
    if (lead.label == label) return &lead;
  }
  return nullptr;
}

bool IsEcgSopClass(absl::string_view sop_class_uid) {
  return sop_class_uid == kTwelveLeadEcgStorage || sop_class_uid == kGeneralEcgStorage;
}

absl::StatusOr<EcgRecording> ParseEcgWaveformFile(const std::string& path) {
  DcmFileFormat file;
  // Large values (the waveform data) stay on disk until read, after their size is checked.
  OFCondition cond =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (cond.bad()) return Unreadable(cond);
  return DecodeFile(file);
}

absl::StatusOr<EcgRecording> ParseEcgWaveformBuffer(absl::string_view bytes) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError("not a DICOM file: it is empty");
  }
  DcmInputBufferStream stream;
  stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  stream.setEos();  // the whole object is in the buffer
  DcmFileFormat file;
  file.transferInit();
  OFCondition cond = file.read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  file.transferEnd();
  if (cond != EC_Normal) return Unreadable(cond);
  return DecodeFile(file);
}

}  // namespace rdg::formats
