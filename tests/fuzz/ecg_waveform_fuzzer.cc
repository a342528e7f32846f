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

namespace {

bool InitOnce() {
  if (!rdg::formats::InitDicomToolkit().ok()) std::abort();  // no dictionary: fuzzing is moot
  return true;
}

}  // namespace

// DCMTK allocates an element's declared length (up to 4 GB) before it finds the buffer too short;
// it uses new (std::nothrow) and fails cleanly when that allocation is refused. Refusing large
// allocations here exercises that path and keeps ASan from spending seconds on huge mappings.
// (The gateway reads files, where DCMTK defers values over 4 KB and never allocates them.)
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1:max_allocation_size_mb=256";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialised = InitOnce();
  (void)initialised;
  absl::StatusOr<rdg::formats::EcgRecording> recording = rdg::formats::ParseEcgWaveformBuffer(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!recording.ok()) return 0;
  const std::string svg = rdg::formats::RenderEcgSvg(*recording);
  // The renderer bounds its output whatever the sampling rate or sample count.
  if (svg.size() > 4 * 1024 * 1024) std::abort();
  return 0;
}
