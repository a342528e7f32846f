// What an outbound job sends, and to whom. The dispatcher (dispatcher.h) knows the queue; the
// senders (dicom_sender.h, mllp_sender.h) know the protocols; Payloads — made by the API layer,
// which has the exams, the reports, the blobs and the names — knows what a job means.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "rdg/v1/config.pb.h"
#include "storage/index/outbound_store.h"

namespace rdg::outbound {

//! One DICOM instance to store: a Part 10 file on the gateway's disk (a stored blob, read as it
//! is sent) or, for the documents RDG makes, the Part 10 bytes.
struct DicomObject {
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string transfer_syntax_uid;  //!< as stored: sent in it, never transcoded
  std::string path;                 //!< when it is a file
  std::string bytes;                //!< else
};

//! An institution's destination, as the configuration has it (defaults applied).
struct Destination {
  std::string institution;
  rdg::v1::Destination config;
};

class Payloads {
 public:
  virtual ~Payloads() = default;
  //! The instances of an images, SR or PDF job. NOT_FOUND when its report or exam is gone;
  //! other errors when it cannot be made now.
  virtual absl::StatusOr<std::vector<DicomObject>> DicomObjectsOf(
      const storage::OutboundJob& job) = 0;
  //! The HL7 message of an ORU job, addressed as `destination` says; its control id (MSH-10) is
  //! the same at every attempt of the job, so a HIS can tell a repeat.
  virtual absl::StatusOr<std::string> MessageOf(const storage::OutboundJob& job,
                                                const Destination& destination) = 0;
};

//! A sender's outcome for one job: sent (with the destination's answer), to retry, or refused
//! for good.
struct SendOutcome {
  enum class Kind { kSent, kRetry, kRefused };
  Kind kind = Kind::kRetry;
  std::string detail;
  //! The destination could not be reached at all: the dispatcher tries none of its other jobs
  //! this round.
  bool unreachable = false;

  static SendOutcome Sent(std::string detail) { return {Kind::kSent, std::move(detail), false}; }
  static SendOutcome Retry(std::string detail, bool unreachable = false) {
    return {Kind::kRetry, std::move(detail), unreachable};
  }
  static SendOutcome Refused(std::string detail) {
    return {Kind::kRefused, std::move(detail), false};
  }
};

}  // namespace rdg::outbound
