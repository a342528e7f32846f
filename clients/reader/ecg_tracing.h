// The reader's view of an ECG: the standard 12-lead printout (gateway/formats/ecg_render) written
// beside the original DICOM file, as SVG and PNG.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rdg::clients {

//! Renders the ECG waveform file `dicom_path` to `out_path`; the format follows its extension
//! (.svg or .png). INVALID_ARGUMENT (with the reason) for a file that is not a valid ECG.
absl::Status RenderEcgFile(const std::string& dicom_path, const std::string& out_path);

//! Writes BASE.svg and BASE.png for the ECG in `dicom_path`; returns the paths written.
absl::StatusOr<std::vector<std::string>> WriteEcgTracings(const std::string& dicom_path,
                                                          const std::string& base);

}  // namespace rdg::clients
