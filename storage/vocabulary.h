// The index's vocabulary: plain enumerations for the records of records.h, without protobuf.
// Each has the numbering of the API's enumeration of the same name (rdg/v1/common.proto,
// admin.proto, reading.proto): the index stores these numbers, and the gateway converts at its
// edge with storage/vocabulary_proto.h, whose static_asserts tie every value to the API's.
// A value outside the listed ones (a newer client's) is kept as its number, as protobuf does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rdg::storage {

//! Lifecycle of an exam; every transition is recorded as an event (ExamEventRecord).
enum class ExamState : int32_t {
  kUnspecified = 0,
  kReceived = 1,
  kRouted = 2,
  kClaimed = 3,
  kPreliminary = 4,
  kFinal = 5,
  kDelivered = 6,
  kAcknowledged = 7,
  kEscalated = 8,
  kReleased = 9,  //!< event only: a claim was released or its lease expired
};

enum class Priority : int32_t {
  kUnspecified = 0,  //!< the routing rule's default applies
  kStat = 1,
  kUrgent = 2,
  kRoutine = 3,
};

//! The role a caller's certificate carries.
enum class Role : int32_t {
  kUnspecified = 0,
  kClinic = 1,
  kReader = 2,
  kAdmin = 3,
};

//! What an object's bytes are.
enum class ObjectKind : int32_t {
  kUnspecified = 0,
  kDicom = 1,     //!< a DICOM Part 10 file
  kHl7v2Lab = 2,  //!< one HL7 v2 ORU^R01 message
};

//! An SLA stage clock.
enum class Stage : int32_t {
  kUnspecified = 0,
  kReceivedToClaimed = 1,
  kReceivedToFinal = 2,
  kFinalToAcknowledged = 3,
  kCriticalAcknowledgement = 4,
};

//! What the patient-identity rules refused to link or merge.
enum class IdentityConflictKind : int32_t {
  kUnspecified = 0,
  kNationalIdRefused = 1,
  kDemographicsDisagree = 2,
  kStudyOfAnotherPatient = 3,
  kOrderOfAnotherPatient = 4,
  kPlaceholderPatientId = 5,
};

enum class ReportStatus : int32_t {
  kUnspecified = 0,
  kPreliminary = 1,
  kFinal = 2,
  kAmended = 3,
};

//! How a report's canonical bytes are signed.
enum class SignatureFormat : int32_t {
  kUnspecified = 0,
  kCmsDetachedEcdsaSha256 = 1,  //!< DER CMS SignedData, detached content
  kSm2Sm3Raw = 2,               //!< plain SM2 signature over the canonical bytes
};

//! The names people read in events, audit details and messages: the API's enumerator names
//! ("ROUTED", "FINAL_REPORT"), so that text written before these enumerations existed reads
//! the same. A value outside the list is named by its number.
std::string Name(ExamState value);
std::string Name(Priority value);
std::string Name(Role value);
std::string Name(ObjectKind value);
std::string Name(Stage value);
std::string Name(IdentityConflictKind value);
std::string Name(ReportStatus value);
std::string Name(SignatureFormat value);

//! The stored number of a value, and back (the index's columns hold these).
template <typename Enum>
constexpr int32_t Number(Enum value) {
  return static_cast<int32_t>(value);
}
template <typename Enum>
constexpr Enum FromNumber(int64_t number) {
  return static_cast<Enum>(static_cast<int32_t>(number));
}

}  // namespace rdg::storage
