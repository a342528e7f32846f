// What every backend's AuditStore computes the same way: the fields the chain covers, and the
// patient participant a record about an exam names (from the exam's patient columns).
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/base/audit_chain.h"
#include "storage/records.h"

namespace rdg::storage {

inline audit::ChainedFields ChainedFieldsOf(const AuditRecord& r) {
  return {r.seq,          absl::ToUnixMicros(r.at),
          r.institution,  r.user,
          Number(r.role), r.action,
          r.exam_id,      r.detail,
          r.outcome,      r.patient_id,
          r.peer,         r.subject};
}

//! `text` with HL7 v2's separators escaped (\E\ \S\ \R\ \T\ \F\).
inline std::string Hl7Escaped(absl::string_view text) {
  return absl::StrReplaceAll(
      text, {{"\\", "\\E\\"}, {"^", "\\S\\"}, {"~", "\\R\\"}, {"&", "\\T\\"}, {"|", "\\F\\"}});
}

//! The patient participant in HL7 CX form: "ID^^^issuer", and when there is a national ID, "~"
//! and that ID the same way. IDs come from uploaded objects: their own separators are escaped,
//! so no ID can pose as a further component or repetition (the national ID's "issuer^type" is
//! the gateway's own two components).
inline std::string PatientParticipant(absl::string_view patient_id, absl::string_view issuer,
                                      absl::string_view national_id,
                                      absl::string_view national_id_issuer) {
  std::string patient = absl::StrCat(Hl7Escaped(patient_id), "^^^", Hl7Escaped(issuer));
  if (!national_id.empty()) {
    absl::StrAppend(&patient, "~", Hl7Escaped(national_id), "^^^", national_id_issuer);
  }
  return patient;
}

}  // namespace rdg::storage
