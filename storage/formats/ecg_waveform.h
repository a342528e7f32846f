// DICOM ECG waveforms (12-Lead ECG and General ECG Waveform Storage): decoding and validation.
// DCMTK stays behind this header; callers get plain structs in physical units (microvolts) and
// absl::Status errors a clinic operator can act on (never patient data).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rdg::formats {

//! SOP Class UIDs recognised as exam type ECG.
inline constexpr absl::string_view kTwelveLeadEcgStorage = "1.2.840.10008.5.1.4.1.1.9.1.1";
inline constexpr absl::string_view kGeneralEcgStorage = "1.2.840.10008.5.1.4.1.1.9.1.2";

//! True for the ECG waveform storage SOP classes above.
bool IsEcgSopClass(absl::string_view sop_class_uid);

//! One channel of a multiplex group, scaled to microvolts.
struct EcgLead {
  std::string label;              //!< normalised lead name: "I", "II", "III", "aVR", ..., "V6"
  std::vector<float> microvolts;  //!< one value per sample
};

//! One multiplex group (e.g. "RHYTHM" or "MEDIAN BEAT").
struct EcgGroup {
  std::string label;                 //!< Multiplex Group Label (003A,0020), may be empty
  double sampling_frequency_hz = 0;  //!< (003A,001A)
  std::vector<EcgLead> leads;
};

//! The automatic measurements of the cart, from the Waveform Annotation Sequence (0040,B020):
//! numeric annotations recognised by their concept's code meaning (SCP-ECG and MDC names such as
//! "PR Interval", "QTc Interval", "MDC_ECG_TIME_PD_QT") in the units they must carry (ms, deg,
//! /min). A value outside the physiological range is left out, never shown.
struct EcgMeasurements {
  std::optional<double> heart_rate_bpm;
  //! How the heart rate was obtained: "device" (an annotation), "RR" (60000 / the RR interval
  //! annotated) or "computed" (R waves found in lead II by EstimateHeartRate).
  std::string heart_rate_source;
  std::optional<double> pr_ms, qrs_ms, qt_ms, qtc_ms;
  std::optional<double> p_axis_deg, qrs_axis_deg, t_axis_deg;
  //! The cart's own statements (Unformatted Text Value annotations), at most kMaxStatements.
  std::vector<std::string> statements;
  static constexpr size_t kMaxStatements = 4;
};

//! Who and what the recording is of, as UTF-8 (converted with the object's Specific Character
//! Set like every other DICOM text; see dicom_text.h). Empty when the object does not say.
struct EcgDetails {
  std::string patient_name;  //!< as people write it (PersonNameForDisplay): "王芳"
  std::string patient_id;
  std::string sex;         //!< (0010,0040): M, F, O
  std::string birth_date;  //!< YYYYMMDD
  std::string age;         //!< DICOM age string ("042Y"): (0010,1010), else from the dates
  //! Acquisition DateTime (0008,002A), else Content Date and Time: the cart's local time as
  //! written (YYYYMMDDHHMMSS[.F][&ZZXX]); the printout shows it as written.
  std::string recorded_at;
  std::string institution;  //!< Institution Name (0008,0080)
  std::string department;   //!< Institutional Department Name (0008,1040)
  std::string device;       //!< Manufacturer (0008,0070) and model (0008,1090)
  //! Filters of the drawn group's first channel (003A,0220/0221/0222), in Hz; 0 = none given.
  double filter_low_hz = 0, filter_high_hz = 0, notch_hz = 0;
  EcgMeasurements measurements;
};

//! A decoded ECG recording: every multiplex group of the Waveform Sequence (5400,0100).
struct EcgRecording {
  std::string sop_class_uid;
  std::vector<EcgGroup> groups;
  //! The group to draw: the first with at least 2.5 s of samples and the most leads ("RHYTHM"
  //! in practice). Index into `groups`.
  size_t rhythm_group = 0;
  EcgDetails details;
};

//! The lead of `group` labelled `label` ("II"), or nullptr.
const EcgLead* FindLead(const EcgGroup& group, absl::string_view label);

//! The heart rate (beats per minute) from the R waves of `lead` (Pan–Tompkins style: slope,
//! squared, integrated over 150 ms, adaptive threshold, 250 ms refractory period), the median
//! RR interval of at least three beats; nullopt when no regular rhythm of 20–300 /min is found.
std::optional<double> EstimateHeartRate(const EcgLead& lead, double sampling_frequency_hz);

//! Decodes and validates the ECG waveform object in `path` (a DICOM file). INVALID_ARGUMENT with
//! the reason when: not an ECG SOP class, no Waveform Sequence, zero channels or samples, a
//! sampling frequency that is not positive, bits allocated other than 8 or 16, a sample
//! interpretation other than SB/SS/UB/US, Waveform Data whose length is not channels × samples ×
//! bits/8, a channel count that disagrees with the Channel Definition Sequence, or a channel
//! whose label cannot be read.
absl::StatusOr<EcgRecording> ParseEcgWaveformFile(const std::string& path);

//! The same from bytes in memory (fuzzing, tests).
absl::StatusOr<EcgRecording> ParseEcgWaveformBuffer(absl::string_view bytes);

}  // namespace rdg::formats
