#include "storage/formats/ecg_details.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "storage/formats/dcmtk_values.h"
#include "storage/formats/dicom_text.h"
#include "storage/formats/text.h"

namespace rdg::formats {
namespace {

//! Annotations read at most: a real cart writes tens to a few hundred.
constexpr unsigned long kMaxAnnotations = 10'000;
//! Display columns kept of one cart statement.
constexpr int kStatementColumns = 100;
//! Heart-rate analysis reads at most this much of the lead (memory stays bounded).
constexpr double kMaxAnalysedSeconds = 60;

//! What a numeric annotation measures.
enum class Measure { kHeartRate, kRr, kPr, kQrs, kQt, kQtc, kPAxis, kQrsAxis, kTAxis };
enum class Unit { kMilliseconds, kDegrees, kPerMinute };

struct MeasureName {
  absl::string_view name;  //!< normalised code meaning (see Normalised), matched as a prefix
  Measure measure;
};
//! SCP-ECG code meanings and MDC reference ids (MDC_ECG_…, "MDC_ECG_" removed). QTc comes
//! before QT: both start alike.
constexpr std::array<MeasureName, 22> kMeasureNames = {{
    {"heart rate", Measure::kHeartRate},
    {"ventricular rate", Measure::kHeartRate},
    {"ventricular heart rate", Measure::kHeartRate},
    {"rr interval", Measure::kRr},
    {"time pd rr", Measure::kRr},
    {"pr interval", Measure::kPr},
    {"pq interval", Measure::kPr},
    {"time pd pr", Measure::kPr},
    {"time pd pq", Measure::kPr},
    {"qrs duration", Measure::kQrs},
    {"time pd qrs", Measure::kQrs},
    {"qtc interval", Measure::kQtc},
    {"time pd qtc", Measure::kQtc},
    {"qt interval", Measure::kQt},
    {"time pd qt", Measure::kQt},
    {"p axis", Measure::kPAxis},
    {"angle p front", Measure::kPAxis},
    {"qrs axis", Measure::kQrsAxis},
    {"angle qrs front", Measure::kQrsAxis},
    {"t axis", Measure::kTAxis},
    {"angle t front", Measure::kTAxis},
    {"hr", Measure::kHeartRate},
}};

//! Lower case, '_' as blanks, runs of blanks as one, without a leading "mdc ecg ".
std::string Normalised(absl::string_view meaning) {
  std::string s = absl::AsciiStrToLower(absl::StrReplaceAll(meaning, {{"_", " "}}));
  std::string out;
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  absl::string_view v = out;
  absl::ConsumePrefix(&v, "mdc ecg ");
  return std::string(v);
}

std::optional<Measure> MeasureOf(absl::string_view meaning) {
  const std::string name = Normalised(meaning);
  for (const MeasureName& m : kMeasureNames) {
    // "hr" only as the whole meaning; the others may go on ("QT Interval global", "... gl").
    const bool whole_only = m.name == "hr";
    if (name == m.name || (!whole_only && absl::StartsWith(name, absl::StrCat(m.name, " ")))) {
      return m.measure;
    }
  }
  return std::nullopt;
}

Unit UnitOf(Measure m) {
  switch (m) {
    case Measure::kHeartRate:
      return Unit::kPerMinute;
    case Measure::kPAxis:
    case Measure::kQrsAxis:
    case Measure::kTAxis:
      return Unit::kDegrees;
    default:
      return Unit::kMilliseconds;
  }
}

//! `value` in `ucum` converted to the unit `m` is shown in, or nullopt when the unit does not
//! fit the measure. Absent units are taken as the usual ones.
std::optional<double> InShownUnit(Measure m, double value, absl::string_view ucum) {
  switch (UnitOf(m)) {
    case Unit::kMilliseconds:
      if (ucum.empty() || ucum == "ms") return value;
      if (ucum == "s") return value * 1000;
      return std::nullopt;
    case Unit::kDegrees:
      if (ucum.empty() || ucum == "deg" || ucum == "\xC2\xB0") return value;
      return std::nullopt;
    case Unit::kPerMinute:
      if (ucum.empty() || ucum == "/min" || ucum == "{beats}/min" || ucum == "{beat}/min" ||
          ucum == "1/min" || ucum == "bpm" || ucum == "{H.B.}/min") {
        return value;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

//! Physiological bounds: a value outside them is a device's placeholder (PP interval 0) or
//! damage, and is not shown.
bool Plausible(Measure m, double v) {
  switch (m) {
    case Measure::kHeartRate:
      return v >= 10 && v <= 350;
    case Measure::kRr:
      return v >= 150 && v <= 6000;
    case Measure::kPr:
      return v >= 40 && v <= 600;
    case Measure::kQrs:
      return v >= 20 && v <= 300;
    case Measure::kQt:
    case Measure::kQtc:
      return v >= 100 && v <= 800;
    case Measure::kPAxis:
    case Measure::kQrsAxis:
    case Measure::kTAxis:
      return v >= -180 && v <= 360;
  }
  return false;
}

//! Keeps the first plausible value of each measure.
void Record(EcgMeasurements& out, std::optional<double>& rr, Measure m, double v) {
  // In the order of the Measure enumerators.
  const std::array<std::optional<double>*, 9> slots = {
      &out.heart_rate_bpm, &rr,         &out.pr_ms,      &out.qrs_ms,
      &out.qt_ms,          &out.qtc_ms, &out.p_axis_deg, &out.qrs_axis_deg,
      &out.t_axis_deg};
  std::optional<double>& slot = *slots[static_cast<size_t>(m)];
  if (!slot.has_value()) slot = v;
}

//! The measurements and statements of the Waveform Annotation Sequence (0040,B020).
EcgMeasurements ReadAnnotations(DcmDataset& ds, DicomTextDecoder& text, std::optional<double>& rr) {
  EcgMeasurements out;
  DcmSequenceOfItems* annotations = nullptr;
  if (ds.findAndGetSequence(DCM_WaveformAnnotationSequence, annotations).bad() ||
      annotations == nullptr) {
    return out;
  }
  const unsigned long n = std::min(annotations->card(), kMaxAnnotations);
  for (unsigned long i = 0; i < n; ++i) {
    DcmItem* item = annotations->getItem(i);
    if (item == nullptr) continue;
    // A statement of several lines: each line decoded (CR and LF end an ISO 2022 code
    // extension, so splitting first is safe), then joined with "; ".
    std::string statement;
    for (absl::string_view line : absl::StrSplit(TrimmedString(*item, DCM_UnformattedTextValue),
                                                 absl::ByAnyChar("\r\n"), absl::SkipWhitespace())) {
      absl::StrAppend(&statement, statement.empty() ? "" : "; ",
                      absl::StripAsciiWhitespace(text.Decode(line, kTextDelimiters)));
    }
    if (!statement.empty() && out.statements.size() < EcgMeasurements::kMaxStatements) {
      out.statements.push_back(TruncateToWidth(statement, kStatementColumns));
    }
    DcmItem* name = FirstItem(*item, DCM_ConceptNameCodeSequence);
    const std::optional<double> value = GetDecimal(*item, DCM_NumericValue);
    if (name == nullptr || !value || !std::isfinite(*value)) continue;
    const std::optional<Measure> measure = MeasureOf(TrimmedString(*name, DCM_CodeMeaning));
    if (!measure) continue;
    std::string units;
    if (DcmItem* unit = FirstItem(*item, DCM_MeasurementUnitsCodeSequence)) {
      units = TrimmedString(*unit, DCM_CodeValue);
    }
    const std::optional<double> shown = InShownUnit(*measure, *value, units);
    if (shown && Plausible(*measure, *shown)) Record(out, rr, *measure, *shown);
  }
  return out;
}

//! "Manufacturer Model", without repeating a model that already names the maker.
std::string DeviceName(std::string manufacturer, const std::string& model) {
  if (model.empty()) return manufacturer;
  if (manufacturer.empty() ||
      absl::StrContains(absl::AsciiStrToLower(model), absl::AsciiStrToLower(manufacturer))) {
    return model;
  }
  return absl::StrCat(manufacturer, " ", model);
}

}  // namespace

void ReadEcgDetails(DcmDataset& ds, EcgRecording& recording) {
  DicomTextDecoder text(TrimmedString(ds, DCM_SpecificCharacterSet));
  auto read = [&](const DcmTagKey& tag, absl::string_view delimiters) {
    return text.Decode(TrimmedString(ds, tag), delimiters);
  };
  EcgDetails& d = recording.details;
  d.patient_name = PersonNameForDisplay(read(DCM_PatientName, kPersonNameDelimiters));
  d.patient_id = read(DCM_PatientID, kStringDelimiters);
  d.sex = read(DCM_PatientSex, kStringDelimiters);
  d.birth_date = read(DCM_PatientBirthDate, kStringDelimiters);
  d.recorded_at = read(DCM_AcquisitionDateTime, kStringDelimiters);
  if (d.recorded_at.empty()) {
    d.recorded_at = absl::StrCat(read(DCM_ContentDate, kStringDelimiters),
                                 read(DCM_ContentTime, kStringDelimiters));
  }
  d.age = read(DCM_PatientAge, kStringDelimiters);
  if (d.age.empty()) d.age = AgeAt(d.birth_date, d.recorded_at);
  d.institution = read(DCM_InstitutionName, kStringDelimiters);
  d.department = read(DCM_InstitutionalDepartmentName, kStringDelimiters);
  d.device = DeviceName(read(DCM_Manufacturer, kStringDelimiters),
                        read(DCM_ManufacturerModelName, kStringDelimiters));

  const EcgGroup* drawn = recording.rhythm_group < recording.groups.size()
                              ? &recording.groups[recording.rhythm_group]
                              : nullptr;
  DcmSequenceOfItems* waveforms = nullptr;
  if (drawn != nullptr && ds.findAndGetSequence(DCM_WaveformSequence, waveforms).good() &&
      waveforms != nullptr && recording.rhythm_group < waveforms->card()) {
    if (DcmItem* def =
            FirstItem(*waveforms->getItem(recording.rhythm_group), DCM_ChannelDefinitionSequence)) {
      auto frequency = [&](const DcmTagKey& tag) {
        const double hz = GetDecimal(*def, tag).value_or(0);
        return std::isfinite(hz) && hz > 0 && hz < 100'000 ? hz : 0.0;
      };
      d.filter_low_hz = frequency(DCM_FilterLowFrequency);
      d.filter_high_hz = frequency(DCM_FilterHighFrequency);
      d.notch_hz = frequency(DCM_NotchFilterFrequency);
    }
  }

  std::optional<double> rr;
  d.measurements = ReadAnnotations(ds, text, rr);
  EcgMeasurements& m = d.measurements;
  if (m.heart_rate_bpm) {
    m.heart_rate_source = "device";
  } else if (rr) {
    m.heart_rate_bpm = 60'000 / *rr;
    m.heart_rate_source = "RR";
  } else if (const EcgLead* two = drawn != nullptr ? FindLead(*drawn, "II") : nullptr) {
    m.heart_rate_bpm = EstimateHeartRate(*two, drawn->sampling_frequency_hz);
    if (m.heart_rate_bpm) m.heart_rate_source = "computed";
  }
}

std::optional<double> EstimateHeartRate(const EcgLead& lead, double hz) {
  if (!std::isfinite(hz) || hz < 50 || hz > 20'000) return std::nullopt;
  const size_t n = std::min(lead.microvolts.size(), static_cast<size_t>(hz * kMaxAnalysedSeconds));
  if (n < hz * 2) return std::nullopt;  // under two seconds: no rhythm to speak of
  const std::vector<float>& x = lead.microvolts;
  // Slope over ~10 ms, squared: large only on the steep QRS flanks.
  const auto lag = std::max<size_t>(1, std::lround(hz * 0.010));
  std::vector<double> energy(n, 0.0);
  for (size_t i = lag; i < n; ++i) {
    const double slope = static_cast<double>(x[i]) - x[i - lag];
    energy[i] = std::isfinite(slope) ? slope * slope : 0.0;
  }
  // Integrated over a 150 ms window: one hump per QRS complex.
  const auto window = std::max<size_t>(1, std::lround(hz * 0.150));
  std::vector<double> hump(n, 0.0);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    sum += energy[i];
    if (i >= window) sum -= energy[i - window];
    hump[i] = std::max(0.0, sum);
  }
  // Threshold from the 98th percentile: robust to one artefact, above the T waves.
  std::vector<double> sorted = hump;
  const size_t p98 = n * 98 / 100;
  std::nth_element(sorted.begin(), sorted.begin() + p98, sorted.end());
  const double threshold = 0.3 * sorted[p98];
  if (!(threshold > 0)) return std::nullopt;
  // One beat per hump above the threshold, 250 ms at least after the previous one. The hump is
  // a plateau as wide as the window; the beat is its steepest slope (the QRS), found among the
  // samples the hump integrates.
  const auto refractory = static_cast<size_t>(hz * 0.250);
  std::vector<size_t> beats;
  for (size_t i = 1; i < n; ++i) {
    if (hump[i] <= threshold || hump[i - 1] > threshold) continue;
    const size_t rise = i;
    while (i < n && hump[i] > threshold) ++i;
    size_t steepest = rise >= window ? rise - window : 0;
    for (size_t j = steepest; j < i; ++j) {
      if (energy[j] > energy[steepest]) steepest = j;
    }
    if (beats.empty() || steepest >= beats.back() + refractory) beats.push_back(steepest);
  }
  if (beats.size() < 3) return std::nullopt;
  std::vector<double> rr;
  for (size_t i = 1; i < beats.size(); ++i) rr.push_back((beats[i] - beats[i - 1]) / hz);
  std::nth_element(rr.begin(), rr.begin() + rr.size() / 2, rr.end());
  const double bpm = 60.0 / rr[rr.size() / 2];
  if (bpm < 20 || bpm > 300) return std::nullopt;
  return bpm;
}

}  // namespace rdg::formats
