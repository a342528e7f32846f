// libFuzzer entry point for the ECG waveform decoder alone (what the gateway runs on every ECG
// upload). Drawing is fuzzed apart in ecg_render_fuzzer.cc: it costs ~1 ms per input and would
// cut this target's rate tenfold. Seeds: tests/fuzz/corpus/ecg/.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "storage/formats/ecg_waveform.h"
#include "tests/fuzz/dcmtk_fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rdg::fuzz::InitDcmtkOnce();
  absl::StatusOr<rdg::formats::EcgRecording> recording = rdg::formats::ParseEcgWaveformBuffer(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!recording.ok()) {
    // A refusal always says why.
    if (recording.status().message().empty()) std::abort();
    return 0;
  }
  // What the header promises of an accepted recording.
  if (recording->groups.empty() || recording->rhythm_group >= recording->groups.size()) {
    std::abort();
  }
  for (const rdg::formats::EcgGroup& group : recording->groups) {
    if (group.leads.empty() || !(group.sampling_frequency_hz > 0)) std::abort();
    const size_t samples = group.leads.front().microvolts.size();
    if (samples == 0) std::abort();
    for (const rdg::formats::EcgLead& lead : group.leads) {
      if (lead.microvolts.size() != samples) std::abort();
      for (float value : lead.microvolts) {
        if (!std::isfinite(value)) std::abort();
      }
    }
  }
  return 0;
}
