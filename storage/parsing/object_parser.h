// The seam between ingest and the parsers of uploaded bytes. The gateway parses in separate
// processes (storage/parsing/IsolatedParser) so that a hostile file costs only its own upload;
// InProcessParser is what those processes run, and what unit tests use directly.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rdg/v1/common.pb.h"
#include "storage/formats/dicom_structure.h"
#include "storage/parsing/parsed_object.h"

namespace rdg::parsing {

//! One staged object to parse.
struct ParseJob {
  rdg::v1::ObjectKind kind = rdg::v1::DICOM;
  std::string path;  //!< the staged file, complete and verified against its SHA-256
  int64_t size = 0;
  absl::Time now;              //!< HL7 ACK time
  std::string ack_control_id;  //!< the HL7 ACK's MSH-10
};

class ObjectParser {
 public:
  virtual ~ObjectParser() = default;
  //! The parsed object; INVALID_ARGUMENT (with an HL7 ACK payload for lab messages) when the
  //! bytes are not an acceptable object. Thread-safe.
  virtual absl::StatusOr<ParsedObject> Parse(const ParseJob& job) const = 0;
};

//! Parses in the calling process: structural check, then DCMTK / the HL7 parser.
class InProcessParser final : public ObjectParser {
 public:
  InProcessParser(CriticalValueTable critical, formats::DicomStructureLimits limits)
      : critical_(std::move(critical)), limits_(limits) {}
  absl::StatusOr<ParsedObject> Parse(const ParseJob& job) const override;

 private:
  const CriticalValueTable critical_;
  const formats::DicomStructureLimits limits_;
};

}  // namespace rdg::parsing
