// The DICOM JSON model (PS3.18 F.2) of what QIDO-RS answers — studies, series and instances,
// from the index's records — and of an instance's metadata (WADO-RS), from its stored file with
// DCMTK, large binary values given as BulkDataURIs. Text is UTF-8 (the index keeps it so):
// Specific Character Set "ISO_IR 192".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/records.h"

namespace rdg::dicomweb {

//! One series of an exam's stored instances (DICOM objects only).
struct SeriesSummary {
  std::string series_instance_uid;
  std::string modality;
  std::vector<const storage::ObjectRecord*> instances;  //!< in ListObjects order
};
std::vector<SeriesSummary> SeriesOf(const std::vector<storage::ObjectRecord>& objects);

//! `base` is the service's root URL ("https://host:port/dicomweb"), for RetrieveURL.
std::string StudyJson(const storage::ExamRecord& exam, const std::vector<SeriesSummary>& series,
                      absl::string_view base);
std::string SeriesJson(const storage::ExamRecord& exam, const SeriesSummary& series,
                       absl::string_view base);
std::string InstanceJson(const storage::ExamRecord& exam, const storage::ObjectRecord& object,
                         absl::string_view base);

//! The metadata of the instance stored at `path` (a Part 10 file): every attribute of its data
//! set, binary values of bulk data elements (pixel data, overlays, waveforms, encapsulated
//! documents) as BulkDataURIs under `instance_url` + "/bulkdata/GGGGEEEE".
absl::StatusOr<std::string> InstanceMetadataJson(const std::string& path,
                                                 absl::string_view instance_url);

//! One frame's pixel data as stored.
struct Frame {
  std::string bytes;
  //! The transfer syntax the bytes are in: the instance's own for compressed pixel data (one
  //! frame's fragments, joined: a JPEG, JPEG-LS, JPEG 2000 or RLE stream), Explicit VR Little
  //! Endian for native pixel data.
  std::string transfer_syntax_uid;
};

//! Frames `numbers` (1-based) of the instance at `path`, read from the file as needed (never
//! the whole pixel data). Compressed frames are found as PS3.5 A.4 says: one fragment per frame,
//! the Basic Offset Table, or all fragments of a single frame; other layouts are UNIMPLEMENTED.
//! NOT_FOUND for a frame the instance does not have.
absl::StatusOr<std::vector<Frame>> Frames(const std::string& path, const std::vector<int>& numbers);

//! The value of element (group, element) of the file at `path` (bulk data): its bytes as stored.
//! NOT_FOUND without it; UNIMPLEMENTED for encapsulated (compressed) pixel data.
absl::StatusOr<std::string> BulkData(const std::string& path, uint16_t group, uint16_t element);

}  // namespace rdg::dicomweb
