#include "storage/vocabulary.h"

#include <array>

namespace rdg::storage {
namespace {

// The names in numbering order; a number without one is named by its digits.
template <typename Enum, size_t N>
std::string NameIn(const std::array<std::string_view, N>& names, Enum value) {
  const auto number = static_cast<int32_t>(value);
  if (number >= 0 && static_cast<size_t>(number) < N) return std::string(names[number]);
  return std::to_string(number);
}

}  // namespace

std::string Name(ExamState value) {
  static constexpr std::array<std::string_view, 10> kNames = {"EXAM_STATE_UNSPECIFIED",
                                                              "RECEIVED",
                                                              "ROUTED",
                                                              "CLAIMED",
                                                              "PRELIMINARY",
                                                              "FINAL",
                                                              "DELIVERED",
                                                              "ACKNOWLEDGED",
                                                              "ESCALATED",
                                                              "RELEASED"};
  return NameIn(kNames, value);
}

std::string Name(Priority value) {
  static constexpr std::array<std::string_view, 4> kNames = {"PRIORITY_UNSPECIFIED", "STAT",
                                                             "URGENT", "ROUTINE"};
  return NameIn(kNames, value);
}

std::string Name(Role value) {
  static constexpr std::array<std::string_view, 4> kNames = {"ROLE_UNSPECIFIED", "CLINIC", "READER",
                                                             "ADMIN"};
  return NameIn(kNames, value);
}

std::string Name(ObjectKind value) {
  static constexpr std::array<std::string_view, 3> kNames = {"OBJECT_KIND_UNSPECIFIED", "DICOM",
                                                             "HL7V2_LAB"};
  return NameIn(kNames, value);
}

std::string Name(Stage value) {
  static constexpr std::array<std::string_view, 5> kNames = {
      "STAGE_UNSPECIFIED", "RECEIVED_TO_CLAIMED", "RECEIVED_TO_FINAL", "FINAL_TO_ACKNOWLEDGED",
      "CRITICAL_ACKNOWLEDGEMENT"};
  return NameIn(kNames, value);
}

std::string Name(IdentityConflictKind value) {
  static constexpr std::array<std::string_view, 6> kNames = {
      "IDENTITY_CONFLICT_KIND_UNSPECIFIED", "NATIONAL_ID_REFUSED",      "DEMOGRAPHICS_DISAGREE",
      "STUDY_OF_ANOTHER_PATIENT",           "ORDER_OF_ANOTHER_PATIENT", "PLACEHOLDER_PATIENT_ID"};
  return NameIn(kNames, value);
}

std::string Name(ReportStatus value) {
  static constexpr std::array<std::string_view, 4> kNames = {
      "REPORT_STATUS_UNSPECIFIED", "PRELIMINARY_REPORT", "FINAL_REPORT", "AMENDED_REPORT"};
  return NameIn(kNames, value);
}

std::string Name(SignatureFormat value) {
  static constexpr std::array<std::string_view, 3> kNames = {
      "SIGNATURE_FORMAT_UNSPECIFIED", "CMS_DETACHED_ECDSA_SHA256", "SM2_SM3_RAW"};
  return NameIn(kNames, value);
}

}  // namespace rdg::storage
