#include "gateway/atna/dicom_audit_message.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gateway/common/audit_throttle.h"
#include "storage/formats/text.h"

namespace rdg::atna {
namespace {

using formats::XmlEscape;

struct ActionEvent {
  absl::string_view action;
  AuditEvent event;
};

// DCM event IDs (PS3.16 CID 400) and event type codes (CID 401).
constexpr AuditEvent kTransferredIn{"110104", "DICOM Instances Transferred", 'C', nullptr, ""};
constexpr AuditEvent kTransferredOut{"110104", "DICOM Instances Transferred", 'R', nullptr, ""};
constexpr AuditEvent kAccessed{"110103", "DICOM Instances Accessed", 'R', nullptr, ""};
constexpr AuditEvent kWorkflow{"110103", "DICOM Instances Accessed", 'U', nullptr, ""};
constexpr AuditEvent kReportCreated{"110103", "DICOM Instances Accessed", 'C', nullptr, ""};
constexpr AuditEvent kQuery{"110112", "Query", 'E', nullptr, ""};
constexpr AuditEvent kPatientRecord{"110110", "Patient Record", 'R', nullptr, ""};
constexpr AuditEvent kAuditLogUsed{"110101", "Audit Log Used", 'R', nullptr, ""};

constexpr ActionEvent kEvents[] = {
    {"application_start", {"110100", "Application Activity", 'E', "110120", "Application Start"}},
    {"application_stop", {"110100", "Application Activity", 'E', "110121", "Application Stop"}},
    {"upload", kTransferredIn},
    {"fetch_exam", kTransferredOut},
    {"download_exam", kTransferredOut},
    {"receive_report", kTransferredOut},
    {"get_report", kTransferredOut},
    {"get_exam", kAccessed},
    {"read_reports", kAccessed},
    {"submit_report", kReportCreated},
    {"claim_exam", kWorkflow},
    {"claim_for_amendment", kWorkflow},
    {"renew_claim", kWorkflow},
    {"release_claim", kWorkflow},
    {"escalate_exam", kWorkflow},
    {"acknowledge_report", kWorkflow},
    {"view_prior", kPatientRecord},
    {"get_priors", kPatientRecord},
    {"priors", kPatientRecord},
    {"break_glass", {"110113", "Security Alert", 'E', "110127", "Emergency Override Started"}},
    {"tls_handshake", {"110114", "User Authentication", 'E', "110122", "Login"}},
    // A backup carries every patient's data off the gateway.
    {"backup_index", {"110106", "Export", 'R', nullptr, ""}},
    {"backup_blobs", {"110106", "Export", 'R', nullptr, ""}},
    {"admin_audit", kAuditLogUsed},
    {"admin_audit_export", kAuditLogUsed},
    {"query_audit", kAuditLogUsed},
    {"export_audit", kAuditLogUsed},
};

//! EventOutcomeIndicator: 0 success; 8 the gateway failed (serious); 4 any other refusal.
const char* OutcomeIndicator(absl::string_view outcome) {
  if (outcome.empty()) return "0";
  if (outcome == "INTERNAL" || outcome == "DATA_LOSS" || outcome == "UNKNOWN") return "8";
  return "4";
}

//! XML attribute `name="value"` (value escaped), with a leading space.
std::string Attr(absl::string_view name, absl::string_view value) {
  return absl::StrCat(" ", name, "=\"", XmlEscape(value), "\"");
}

//! A coded value's attributes (CodedValueType: csd-code, codeSystemName, originalText).
std::string Coded(absl::string_view code, absl::string_view system, absl::string_view meaning) {
  return absl::StrCat(Attr("csd-code", code), Attr("codeSystemName", system),
                      Attr("originalText", meaning));
}

//! A token's value space: no leading, trailing or repeated whitespace, never empty.
std::string Token(absl::string_view text) {
  std::string out;
  for (absl::string_view word :
       absl::StrSplit(text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    if (!out.empty()) out.push_back(' ');
    absl::StrAppend(&out, word);
  }
  return out.empty() ? "-" : out;
}

std::string EventIdentification(const storage::AuditRecord& r, const AuditEvent& event) {
  std::string out = absl::StrCat(
      "<EventIdentification", Attr("EventActionCode", std::string(1, event.action)),
      Attr("EventDateTime", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", r.at, absl::UTCTimeZone())),
      Attr("EventOutcomeIndicator", OutcomeIndicator(r.outcome)), ">", "<EventID",
      Coded(event.code, "DCM", event.name), "/>");
  if (event.type_code != nullptr) {
    absl::StrAppend(&out, "<EventTypeCode", Coded(event.type_code, "DCM", event.type_name), "/>");
  }
  // The record's own words: what was done, or why it was refused; and its place in the chain.
  std::string description = absl::StrCat("RDG audit record ", r.seq, ": ", r.action);
  if (!r.outcome.empty()) absl::StrAppend(&description, " refused (", r.outcome, ")");
  if (!r.detail.empty()) absl::StrAppend(&description, ": ", r.detail);
  absl::StrAppend(&out, "<EventOutcomeDescription>", XmlEscape(description),
                  "</EventOutcomeDescription></EventIdentification>");
  return out;
}

//! The role as certificates name it (OU): "clinic", "reader", "admin"; "" when none.
std::string RoleName(storage::Role role) {
  return role == storage::Role::kUnspecified ? "" : absl::AsciiStrToLower(storage::Name(role));
}

//! The caller: user@institution (or the certificate subject when no principal was derived).
std::string Caller(const storage::AuditRecord& r, const AuditEvent& event) {
  std::string user_id = !r.user.empty() && !r.institution.empty()
                            ? absl::StrCat(r.user, "@", r.institution)
                        : !r.user.empty()    ? r.user
                        : !r.subject.empty() ? r.subject
                                             : "unknown";
  std::string out = absl::StrCat("<ActiveParticipant", Attr("UserID", user_id));
  if (!r.subject.empty()) absl::StrAppend(&out, Attr("UserName", r.subject));
  absl::StrAppend(&out, Attr("UserIsRequestor", "true"));
  if (!r.peer.empty()) {
    absl::StrAppend(&out, Attr("NetworkAccessPointID", Token(PeerAddress(r.peer))),
                    Attr("NetworkAccessPointTypeCode", "2"));
  }
  absl::StrAppend(&out, ">");
  if (absl::string_view(event.code) == "110104") {  // transfers name source and destination
    absl::StrAppend(&out, "<RoleIDCode",
                    event.action == 'C' ? Coded("110153", "DCM", "Source Role ID")
                                        : Coded("110152", "DCM", "Destination Role ID"),
                    "/>");
  }
  if (const std::string role = RoleName(r.role); !role.empty()) {
    absl::StrAppend(&out, "<RoleIDCode", Coded(role, "RDG", absl::StrCat("RDG ", role)), "/>");
  }
  absl::StrAppend(&out, "</ActiveParticipant>");
  return out;
}

std::string Gateway(const AuditSource& source, const AuditEvent& event, bool requestor) {
  std::string out = absl::StrCat("<ActiveParticipant", Attr("UserID", source.source_id),
                                 Attr("AlternativeUserID", absl::StrCat(source.pid)),
                                 Attr("UserIsRequestor", requestor ? "true" : "false"),
                                 Attr("NetworkAccessPointID", Token(source.hostname)),
                                 Attr("NetworkAccessPointTypeCode", "1"), ">");
  if (absl::string_view(event.code) == "110104") {
    absl::StrAppend(&out, "<RoleIDCode",
                    event.action == 'C' ? Coded("110152", "DCM", "Destination Role ID")
                                        : Coded("110153", "DCM", "Source Role ID"),
                    "/>");
  } else if (absl::string_view(event.code) == "110100") {
    absl::StrAppend(&out, "<RoleIDCode", Coded("110150", "DCM", "Application"), "/>");
  }
  absl::StrAppend(&out, "</ActiveParticipant>");
  return out;
}

std::string Patient(const storage::AuditRecord& r, const ExamFacts& exam) {
  return absl::StrCat(
      "<ParticipantObjectIdentification", Attr("ParticipantObjectID", Token(r.patient_id)),
      Attr("ParticipantObjectTypeCode", "1"), Attr("ParticipantObjectTypeCodeRole", "1"), ">",
      "<ParticipantObjectIDTypeCode", Coded("2", "RFC-3881", "Patient Number"), "/>",
      "<ParticipantObjectName>",
      XmlEscape(Token(exam.patient_name.empty() ? r.patient_id : exam.patient_name)),
      "</ParticipantObjectName></ParticipantObjectIdentification>");
}

std::string Study(const storage::AuditRecord& r, const ExamFacts& exam) {
  const bool known = !exam.study_instance_uid.empty();
  return absl::StrCat(
      "<ParticipantObjectIdentification",
      Attr("ParticipantObjectID", Token(known ? exam.study_instance_uid : r.exam_id)),
      Attr("ParticipantObjectTypeCode", "2"), Attr("ParticipantObjectTypeCodeRole", "3"), ">",
      "<ParticipantObjectIDTypeCode",
      known ? Coded("110180", "DCM", "Study Instance UID") : Coded("exam", "RDG", "RDG exam ID"),
      "/>", "<ParticipantObjectName>", XmlEscape(Token(r.exam_id)),
      "</ParticipantObjectName></ParticipantObjectIdentification>");
}

}  // namespace

AuditEvent EventOf(absl::string_view action, bool names_exam) {
  for (const ActionEvent& e : kEvents) {
    if (e.action == action) return e.event;
  }
  if (absl::StartsWith(action, "admin_")) return kQuery;
  return names_exam ? kAccessed : kQuery;
}

std::string DicomAuditMessage(const storage::AuditRecord& r, const ExamFacts& exam,
                              const AuditSource& source) {
  const AuditEvent event = EventOf(r.action, !r.exam_id.empty());
  const bool has_caller = !r.user.empty() || !r.subject.empty() || !r.peer.empty();
  std::string out = absl::StrCat("<AuditMessage>", EventIdentification(r, event));
  if (has_caller) absl::StrAppend(&out, Caller(r, event));
  absl::StrAppend(&out, Gateway(source, event, !has_caller));
  absl::StrAppend(&out, "<AuditSourceIdentification",
                  Attr("AuditEnterpriseSiteID", Token(source.site_id)),
                  Attr("AuditSourceID", Token(source.source_id)), ">", "<AuditSourceTypeCode",
                  Attr("csd-code", "4"), "/></AuditSourceIdentification>");
  if (!r.patient_id.empty()) absl::StrAppend(&out, Patient(r, exam));
  if (!r.exam_id.empty()) absl::StrAppend(&out, Study(r, exam));
  absl::StrAppend(&out, "</AuditMessage>");
  return out;
}

}  // namespace rdg::atna
