// What every fuzzer that feeds bytes to DCMTK needs: the data dictionary loaded once, and ASan
// told to refuse huge allocations. Include it in exactly one file of a fuzzer (it defines
// __asan_default_options).
#pragma once

#include <cstdlib>

#include "storage/formats/dicom_parser.h"

namespace rdg::fuzz {

//! Loads DCMTK's dictionary on the first call; aborts without one (fuzzing would be moot).
inline void InitDcmtkOnce() {
  static const bool initialised = [] {
    if (!rdg::formats::InitDicomToolkit().ok()) std::abort();
    return true;
  }();
  (void)initialised;
}

}  // namespace rdg::fuzz

// DCMTK allocates an element's declared length (up to 4 GB) before it finds the buffer too short;
// it uses new (std::nothrow) and fails cleanly when that allocation is refused. Refusing large
// allocations here exercises that path and keeps ASan from spending seconds on huge mappings.
// (The gateway reads files, where DCMTK defers values over 4 KB and never allocates them.)
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1:max_allocation_size_mb=256";
}
