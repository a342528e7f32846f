// The reader's view of an ECG: the standard 12-lead printout (clients/reader/ecg_render) written
// beside the original DICOM file, as SVG and PNG.
//
// The waveform file came from a clinic's cart, through the platform: it is parsed and drawn in a
// child process of rdg-reader (its hidden `ecg-worker` command), limited in memory, CPU time and
// wall-clock time, so that a file that crashes or hangs the parser costs only its tracing, never
// the reader's session (a fetch of several objects goes on).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rdg::clients {

//! Renders the ECG waveform file `dicom_path` to `out_path`; the format follows its extension
//! (.svg or .png). INVALID_ARGUMENT (with the reason) for a file that is not a valid ECG or could
//! not be drawn safely (the renderer crashed, ran out of time or memory).
absl::Status RenderEcgFile(const std::string& dicom_path, const std::string& out_path);

//! Writes BASE.svg and BASE.png for the ECG in `dicom_path`; returns the paths written.
absl::StatusOr<std::vector<std::string>> WriteEcgTracings(const std::string& dicom_path,
                                                          const std::string& base);

//! The name of rdg-reader's hidden command that runs RunEcgWorker.
inline constexpr char kEcgWorkerCommand[] = "ecg-worker";

//! The child's side: limits this process, then renders `dicom_path` to each of `out_paths`
//! (.svg/.png). Exit status 0, or 1 with the reason on stderr.
int RunEcgWorker(const std::string& dicom_path, const std::vector<std::string>& out_paths);

}  // namespace rdg::clients
