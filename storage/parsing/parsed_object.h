// What ingest takes from one uploaded object, whatever its format (DICOM image, DICOM ECG
// waveform, HL7 v2 lab message): study-level and instance-level attributes, lab observations and,
// for lab messages, what the HL7 ACK needs. The formats/ parsers do the reading; this file maps
// their results onto the index's records and decides what is critical.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "rdg/v1/config.pb.h"
#include "rdg/v1/ingest.pb.h"
#include "storage/formats/hl7_lab.h"
#include "storage/records.h"

namespace rdg::parsing {

//! Lab critical values (危急值): the lab's own HH/LL/AA flags, and numeric limits configured per
//! test code (rdg.v1.CriticalValueRule).
class CriticalValueTable {
 public:
  CriticalValueTable() = default;
  explicit CriticalValueTable(
      const google::protobuf::RepeatedPtrField<rdg::v1::CriticalValueRule>& rules);
  //! Whether an observation is critical by its abnormal flags or its configured limits.
  bool IsCritical(const formats::LabObservation& observation) const;

 private:
  std::vector<rdg::v1::CriticalValueRule> rules_;  //!< few: a linear scan is the fast path
};

//! One parsed object, ready to become index rows (origin, priority and session come later).
struct ParsedObject {
  storage::ExamRecord exam;      //!< study_instance_uid is the grouping key of the exam
  storage::ObjectRecord object;  //!< sop_instance_uid is the object's identity at its origin
  std::vector<storage::LabResultRecord> lab_results;
  std::optional<formats::Hl7Header> hl7_header;  //!< lab messages: answered with an ACK
};

//! A DICOM object. ECG waveform SOP classes are decoded and validated (formats/ecg_waveform) and
//! become exam type ECG; anything unreadable is INVALID_ARGUMENT with the reason.
absl::StatusOr<ParsedObject> ParseDicomObject(const std::string& path);

//! An HL7 v2 ORU^R01 lab message of `size` bytes in `path`. A message the parser rejects is
//! INVALID_ARGUMENT carrying its AE/AR acknowledgement (see AttachAck / AckOf).
absl::StatusOr<ParsedObject> ParseLabObject(const std::string& path, int64_t size,
                                            const CriticalValueTable& critical, absl::Time now,
                                            absl::string_view ack_control_id);

//! The acknowledgement of a lab message (`header` nullopt when even MSH was unreadable).
rdg::v1::Hl7Acknowledgement MakeAck(const std::optional<formats::Hl7Header>& header,
                                    formats::Hl7AckCode code,
                                    const formats::Hl7Rejection* rejection, absl::Time now,
                                    absl::string_view ack_control_id);

//! Type URL under which an Hl7Acknowledgement travels as an absl::Status payload and, at the
//! service edge, as an Any in the gRPC error details.
inline constexpr char kHl7AckTypeUrl[] = "type.googleapis.com/rdg.v1.Hl7Acknowledgement";
absl::Status AttachAck(absl::Status status, const rdg::v1::Hl7Acknowledgement& ack);
//! The acknowledgement AttachAck put on `status`, if any.
std::optional<rdg::v1::Hl7Acknowledgement> AckOf(const absl::Status& status);

}  // namespace rdg::parsing
