// Renders an ECG recording in the standard clinical layout: a 3×4 grid of the twelve leads
// (2.5 s each: I, II, III | aVR, aVL, aVF | V1, V2, V3 | V4, V5, V6 in columns) and a full-width
// lead II rhythm strip (10 s), at 25 mm/s and 10 mm/mV, on the millimetre grid (thin lines every
// 1 mm, thick every 5 mm), with lead labels and a 1 mV calibration pulse at the start of each row;
// above it the patient, the recording (time, institution, device, filters) and the cart's
// measurements, as a cardiologist signs it.
// Plain data in, bytes out: no DCMTK, no gateway state.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "storage/formats/ecg_waveform.h"

namespace rdg::clients {

struct EcgRenderOptions {
  //! PNG resolution: pixels per millimetre of paper (10 px/mm ≈ 254 dpi).
  double png_pixels_per_mm = 8.0;
};

//! The tracing as an SVG document (sizes in millimetres). Structure, for tests and styling:
//! header lines <text id="patient"> (<tspan class="patient-name"> and "patient-ids": ID, sex,
//! age, birth date), "legend" (speed, gain, filters), "recording" (time, institution, device),
//! "measurements" (HR, PR, QRS, QT/QTc, axes) and "statements" (the cart's own, unconfirmed),
//! taken from recording.details; <g id="grid"> (class "grid-minor"/"grid-major" lines), one <g
//! class="lead" id="lead-I"> ... <g class="lead" id="lead-V6"> per panel with a <text
//! class="lead-label"> and a <path class="trace">, <g class="rhythm" id="rhythm-II"> for the strip,
//! and <path class="calibration"> pulses. Leads missing from the recording are drawn as labelled
//! empty panels.
std::string RenderEcgSvg(const formats::EcgRecording& recording,
                         const EcgRenderOptions& options = {});

//! The same picture rasterised to PNG (librsvg + cairo). INTERNAL if rasterising fails.
absl::StatusOr<std::string> RenderEcgPng(const formats::EcgRecording& recording,
                                         const EcgRenderOptions& options = {});

//! Paper size of the layout in millimetres (the PNG is width_mm × png_pixels_per_mm wide).
struct EcgPaperSize {
  double width_mm;
  double height_mm;
};
EcgPaperSize EcgPaper();

}  // namespace rdg::clients
