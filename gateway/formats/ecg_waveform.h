// DICOM ECG waveforms (12-Lead ECG and General ECG Waveform Storage): decoding and validation.
// DCMTK stays behind this header; callers get plain structs in physical units (microvolts) and
// absl::Status errors a clinic operator can act on (never patient data).
#pragma once

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
  std::string label;                //!< normalised lead name: "I", "II", "III", "aVR", ..., "V6"
  std::vector<float> microvolts;    //!< one value per sample
};

//! One multiplex group (e.g. "RHYTHM" or "MEDIAN BEAT").
struct EcgGroup {
  std::string label;                //!< Multiplex Group Label (003A,0020), may be empty
  double sampling_frequency_hz = 0; //!< (003A,001A)
  std::vector<EcgLead> leads;
};

//! A decoded ECG recording: every multiplex group of the Waveform Sequence (5400,0100).
struct EcgRecording {
  std::string sop_class_uid;
  std::vector<EcgGroup> groups;
  //! The group to draw: the first with at least 2.5 s of samples and the most leads ("RHYTHM"
  //! in practice). Index into `groups`.
  size_t rhythm_group = 0;
};

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
