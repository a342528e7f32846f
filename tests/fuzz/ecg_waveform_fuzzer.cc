// libFuzzer entry point for the ECG waveform decoder and the SVG renderer it feeds. PNG
// rasterising is left out: it costs ~100 ms per input and only sees SVG the renderer wrote.
// Seeds: tests/fuzz/corpus/ecg/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "gateway/formats/dicom_parser.h"
#include "gateway/formats/ecg_render.h"
#include "gateway/formats/ecg_waveform.h"
#include "tests/fuzz/dcmtk_fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rdg::fuzz::InitDcmtkOnce();
  absl::StatusOr<rdg::formats::EcgRecording> recording = rdg::formats::ParseEcgWaveformBuffer(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!recording.ok()) return 0;
  const std::string svg = rdg::formats::RenderEcgSvg(*recording);
  // The renderer bounds its output whatever the sampling rate or sample count.
  if (svg.size() > 4 * 1024 * 1024) std::abort();
  return 0;
}
