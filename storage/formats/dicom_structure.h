// A cheap structural check of a DICOM object before DCMTK reads it. DCMTK's parser recurses once
// per sequence level and trusts declared lengths; this walk is iterative, reads only element
// headers (values are skipped by their lengths, so a 2 GB object costs a few thousand reads) and
// refuses what no modality writes: sequences nested deeper than a limit, more data elements than a
// limit, lengths that run past their container or the file, items outside sequences, unclosed
// sequences and items. Hand-written: DCMTK has no depth option and no header-only walk.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rdg::formats {

struct DicomStructureLimits {
  int32_t max_sequence_depth = 64;  //!< nested sequences (SQ, UN of undefined length, pixel items)
  int64_t max_elements = 500000;    //!< data elements and items, all levels together
};

//! What the walk saw (for tests and figures).
struct DicomStructureFacts {
  int64_t elements = 0;  //!< data elements and items
  int32_t deepest_sequence = 0;
  bool deflated = false;  //!< deflated transfer syntax: the dataset was not walked
};

//! Walks the DICOM object in `path` (Part 10 file or bare dataset). INVALID_ARGUMENT naming the
//! tag and the reason when the structure is broken or beyond the limits; no patient data.
absl::StatusOr<DicomStructureFacts> CheckDicomStructure(const std::string& path,
                                                        const DicomStructureLimits& limits);
//! The same over bytes in memory (fuzzing, tests).
absl::StatusOr<DicomStructureFacts> CheckDicomStructureBuffer(absl::string_view bytes,
                                                              const DicomStructureLimits& limits);

}  // namespace rdg::formats
