// Conversions between the index's vocabulary (storage/vocabulary.h) and the API's enumerations,
// for the code that speaks both: the gateway's services and desks, and object parsing. The
// numbering is the same by construction; the static_asserts keep it so (a value added to the API
// without its counterpart here fails to compile).
#pragma once

#include "rdg/v1/admin.pb.h"
#include "rdg/v1/common.pb.h"
#include "rdg/v1/reading.pb.h"
#include "storage/vocabulary.h"

namespace rdg::storage {

static_assert(Number(ExamState::kUnspecified) == rdg::v1::EXAM_STATE_UNSPECIFIED);
static_assert(Number(ExamState::kReceived) == rdg::v1::RECEIVED);
static_assert(Number(ExamState::kRouted) == rdg::v1::ROUTED);
static_assert(Number(ExamState::kClaimed) == rdg::v1::CLAIMED);
static_assert(Number(ExamState::kPreliminary) == rdg::v1::PRELIMINARY);
static_assert(Number(ExamState::kFinal) == rdg::v1::FINAL);
static_assert(Number(ExamState::kDelivered) == rdg::v1::DELIVERED);
static_assert(Number(ExamState::kAcknowledged) == rdg::v1::ACKNOWLEDGED);
static_assert(Number(ExamState::kEscalated) == rdg::v1::ESCALATED);
static_assert(Number(ExamState::kReleased) == rdg::v1::RELEASED);
static_assert(rdg::v1::ExamState_ARRAYSIZE == 10);
inline rdg::v1::ExamState ToProto(ExamState value) {
  return static_cast<rdg::v1::ExamState>(Number(value));
}
inline ExamState FromProto(rdg::v1::ExamState value) { return FromNumber<ExamState>(value); }

static_assert(Number(Priority::kUnspecified) == rdg::v1::PRIORITY_UNSPECIFIED);
static_assert(Number(Priority::kStat) == rdg::v1::STAT);
static_assert(Number(Priority::kUrgent) == rdg::v1::URGENT);
static_assert(Number(Priority::kRoutine) == rdg::v1::ROUTINE);
static_assert(rdg::v1::Priority_ARRAYSIZE == 4);
inline rdg::v1::Priority ToProto(Priority value) {
  return static_cast<rdg::v1::Priority>(Number(value));
}
inline Priority FromProto(rdg::v1::Priority value) { return FromNumber<Priority>(value); }

static_assert(Number(Role::kUnspecified) == rdg::v1::ROLE_UNSPECIFIED);
static_assert(Number(Role::kClinic) == rdg::v1::CLINIC);
static_assert(Number(Role::kReader) == rdg::v1::READER);
static_assert(Number(Role::kAdmin) == rdg::v1::ADMIN);
static_assert(rdg::v1::Role_ARRAYSIZE == 4);
inline rdg::v1::Role ToProto(Role value) { return static_cast<rdg::v1::Role>(Number(value)); }
inline Role FromProto(rdg::v1::Role value) { return FromNumber<Role>(value); }

static_assert(Number(ObjectKind::kUnspecified) == rdg::v1::OBJECT_KIND_UNSPECIFIED);
static_assert(Number(ObjectKind::kDicom) == rdg::v1::DICOM);
static_assert(Number(ObjectKind::kHl7v2Lab) == rdg::v1::HL7V2_LAB);
static_assert(rdg::v1::ObjectKind_ARRAYSIZE == 3);
inline rdg::v1::ObjectKind ToProto(ObjectKind value) {
  return static_cast<rdg::v1::ObjectKind>(Number(value));
}
inline ObjectKind FromProto(rdg::v1::ObjectKind value) { return FromNumber<ObjectKind>(value); }

static_assert(Number(Stage::kUnspecified) == rdg::v1::STAGE_UNSPECIFIED);
static_assert(Number(Stage::kReceivedToClaimed) == rdg::v1::RECEIVED_TO_CLAIMED);
static_assert(Number(Stage::kReceivedToFinal) == rdg::v1::RECEIVED_TO_FINAL);
static_assert(Number(Stage::kFinalToAcknowledged) == rdg::v1::FINAL_TO_ACKNOWLEDGED);
static_assert(Number(Stage::kCriticalAcknowledgement) == rdg::v1::CRITICAL_ACKNOWLEDGEMENT);
static_assert(rdg::v1::Stage_ARRAYSIZE == 5);
inline rdg::v1::Stage ToProto(Stage value) { return static_cast<rdg::v1::Stage>(Number(value)); }
inline Stage FromProto(rdg::v1::Stage value) { return FromNumber<Stage>(value); }

static_assert(Number(IdentityConflictKind::kUnspecified) ==
              rdg::v1::IDENTITY_CONFLICT_KIND_UNSPECIFIED);
static_assert(Number(IdentityConflictKind::kNationalIdRefused) == rdg::v1::NATIONAL_ID_REFUSED);
static_assert(Number(IdentityConflictKind::kDemographicsDisagree) ==
              rdg::v1::DEMOGRAPHICS_DISAGREE);
static_assert(Number(IdentityConflictKind::kStudyOfAnotherPatient) ==
              rdg::v1::STUDY_OF_ANOTHER_PATIENT);
static_assert(Number(IdentityConflictKind::kOrderOfAnotherPatient) ==
              rdg::v1::ORDER_OF_ANOTHER_PATIENT);
static_assert(Number(IdentityConflictKind::kPlaceholderPatientId) ==
              rdg::v1::PLACEHOLDER_PATIENT_ID);
static_assert(rdg::v1::IdentityConflictKind_ARRAYSIZE == 6);
inline rdg::v1::IdentityConflictKind ToProto(IdentityConflictKind value) {
  return static_cast<rdg::v1::IdentityConflictKind>(Number(value));
}
inline IdentityConflictKind FromProto(rdg::v1::IdentityConflictKind value) {
  return FromNumber<IdentityConflictKind>(value);
}

static_assert(Number(ReportStatus::kUnspecified) == rdg::v1::REPORT_STATUS_UNSPECIFIED);
static_assert(Number(ReportStatus::kPreliminary) == rdg::v1::PRELIMINARY_REPORT);
static_assert(Number(ReportStatus::kFinal) == rdg::v1::FINAL_REPORT);
static_assert(Number(ReportStatus::kAmended) == rdg::v1::AMENDED_REPORT);
static_assert(rdg::v1::ReportStatus_ARRAYSIZE == 4);
inline rdg::v1::ReportStatus ToProto(ReportStatus value) {
  return static_cast<rdg::v1::ReportStatus>(Number(value));
}
inline ReportStatus FromProto(rdg::v1::ReportStatus value) {
  return FromNumber<ReportStatus>(value);
}

static_assert(Number(SignatureFormat::kUnspecified) == rdg::v1::SIGNATURE_FORMAT_UNSPECIFIED);
static_assert(Number(SignatureFormat::kCmsDetachedEcdsaSha256) ==
              rdg::v1::CMS_DETACHED_ECDSA_SHA256);
static_assert(Number(SignatureFormat::kSm2Sm3Raw) == rdg::v1::SM2_SM3_RAW);
static_assert(rdg::v1::SignatureFormat_ARRAYSIZE == 3);
inline rdg::v1::SignatureFormat ToProto(SignatureFormat value) {
  return static_cast<rdg::v1::SignatureFormat>(Number(value));
}
inline SignatureFormat FromProto(rdg::v1::SignatureFormat value) {
  return FromNumber<SignatureFormat>(value);
}

}  // namespace rdg::storage
