// The DICOM JSON model (PS3.18 F.2) of what QIDO-RS answers — studies, series and instances,
// from the index's records — and of an instance's metadata (WADO-RS), from its stored file with
// DCMTK, large binary values given as BulkDataURIs. Text is UTF-8 (the index keeps it so):
// Specific Character Set "ISO_IR 192".
#pragma once

#include <memory>
#include <string>
#include <utility>
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

//! The frames of one stored instance, each read from the file when asked for (never the whole
//! pixel data). Compressed frames are found as PS3.5 A.4 allows: one fragment per frame, the
//! Basic Offset Table, or all fragments of a single frame; other layouts are UNIMPLEMENTED.
class FrameSource {
 public:
  //! NOT_FOUND for an instance without pixel data.
  static absl::StatusOr<std::unique_ptr<FrameSource>> Open(const std::string& path);
  ~FrameSource();

  int count() const;
  //! The transfer syntax the frames are in: the instance's own when compressed (a frame is a
  //! JPEG, JPEG-LS, JPEG 2000 or RLE stream); Explicit VR Little Endian for native pixel data.
  const std::string& transfer_syntax_uid() const;
  //! Whether frame `n` (1-based) can be read: NOT_FOUND for a frame the instance does not
  //! have, UNIMPLEMENTED when its fragments cannot be told apart. Reads no pixel data.
  absl::Status Locate(int n) const;
  //! Frame `n` (1-based), with Locate's errors.
  absl::StatusOr<std::string> Read(int n) const;

 private:
  struct State;
  explicit FrameSource(std::unique_ptr<State> state);
  //! The fragments [first, end) of compressed frame `n`.
  absl::StatusOr<std::pair<uint32_t, uint32_t>> FragmentsOf(int n) const;
  std::unique_ptr<State> state_;
};

//! The value of a bulk data element (group, element) of the file at `path`, read from the file a
//! piece at a time. NOT_FOUND without it, or for an element that is not bulk data;
//! UNIMPLEMENTED for encapsulated (compressed) pixel data.
class BulkValue {
 public:
  static absl::StatusOr<std::unique_ptr<BulkValue>> Open(const std::string& path, uint16_t group,
                                                         uint16_t element);
  ~BulkValue();

  uint32_t size() const;
  //! Bytes [offset, offset + n) of the value as stored.
  absl::Status ReadAt(uint32_t offset, char* out, uint32_t n) const;

 private:
  struct State;
  explicit BulkValue(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace rdg::dicomweb
