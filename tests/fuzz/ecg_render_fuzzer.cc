// libFuzzer entry point for the reader's ECG drawing: the waveform decoder, then the SVG renderer
// on what it decodes. PNG rasterising is left out: it costs ~100 ms per input and only sees SVG
// the renderer wrote. Seeds: tests/fuzz/corpus/ecg/ (run with -max_len=16384 or so: larger
// inputs only add samples to draw).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "clients/reader/ecg_render.h"
#include "storage/formats/ecg_waveform.h"
#include "tests/fuzz/dcmtk_fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rdg::fuzz::InitDcmtkOnce();
  absl::StatusOr<rdg::formats::EcgRecording> recording = rdg::formats::ParseEcgWaveformBuffer(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!recording.ok()) return 0;
  const std::string svg = rdg::clients::RenderEcgSvg(*recording);
  // The renderer bounds its output whatever the sampling rate or sample count.
  if (svg.size() > 4 * 1024 * 1024) std::abort();
  return 0;
}
