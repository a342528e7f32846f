// Parser isolation benchmark (not part of the pass/fail suite): what parsing an uploaded object
// in an rdg-parser process costs compared with parsing it in the gateway's own process, per
// object, for pydicom's CT (39 KB), MR (10 KB) and 12-lead ECG objects. Both sides run the same
// code (parsing::InProcessParser); the difference is the socket round trip, the answer's
// serialisation and the per-object CPU limit. Usage: parser_bench [objects per file] (default 2000)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/formats/dicom_parser.h"
#include "storage/parsing/isolated_parser.h"
#include "storage/parsing/object_parser.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRounds = 5;

//! Microseconds per object of `n` parses of `path`: the best of kRounds rounds of n / kRounds
//! (the fastest round is the one least disturbed by the rest of the machine).
double MicrosPerObject(const rdg::parsing::ObjectParser& parser, const std::string& path, int n) {
  const rdg::parsing::ParseJob job{rdg::v1::DICOM, path, 0, absl::Now(), "RDG1"};
  if (auto warm = parser.Parse(job); !warm.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(warm.status().message()).c_str());
    std::exit(1);
  }
  double best = 1e30;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = Clock::now();
    for (int i = 0; i < n / kRounds; ++i) {
      if (!parser.Parse(job).ok()) std::exit(1);
    }
    best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - start).count() /
                              (n / kRounds));
  }
  return best;
}

//! The 1-minute load average: near 1 while only this benchmark runs on a quiet machine.
double LoadAverage() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  if (!rdg::formats::InitDicomToolkit().ok()) return 1;
  const rdg::parsing::InProcessParser in_process(rdg::parsing::CriticalValueTable(), {64, 500000});
  rdg::parsing::IsolatedParser::Options options;
  options.program = std::string(RDG_BIN_DIR) + "/rdg-parser";
  options.processes = 1;
  options.setup.mutable_limits()->set_max_sequence_depth(64);
  options.setup.mutable_limits()->set_max_elements(500000);
  options.setup.mutable_limits()->set_timeout_seconds(30);
  options.setup.mutable_limits()->set_memory_bytes(int64_t{1} << 30);
  auto isolated = rdg::parsing::IsolatedParser::Start(options);
  if (!isolated.ok()) {
    std::fprintf(stderr, "%s\n", std::string(isolated.status().message()).c_str());
    return 1;
  }
  const std::string dir = "/usr/lib/python3/dist-packages/pydicom/data/test_files/";
  std::printf("load average before: %.2f (other work on the machine skews the figures)\n",
              LoadAverage());
  std::printf("%-18s %12s %12s %12s\n", "object", "in-process", "isolated", "overhead");
  for (const char* name : {"CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm"}) {
    const double local = MicrosPerObject(in_process, dir + name, n);
    const double remote = MicrosPerObject(**isolated, dir + name, n);
    std::printf("%-18s %9.1f us %9.1f us %9.1f us\n", name, local, remote, remote - local);
  }
  std::printf("load average after: %.2f\n", LoadAverage());
  return 0;
}
