// An audit record as a DICOM audit message (DICOM PS3.15 A.5, the XML IHE ATNA audit
// repositories store): which event (DCM codes of PS3.16 CID 400-403), who took part (the caller
// and the gateway), and the objects involved (the patient; the study). Pure: what the record and
// its exam say, nothing read here.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "storage/records.h"

namespace rdg::atna {

//! Who reports the events: the gateway.
struct AuditSource {
  std::string source_id;  //!< AuditSourceID and the gateway's UserID ("rdg-gateway@host")
  std::string site_id;    //!< AuditEnterpriseSiteID: the platform's name
  std::string hostname;   //!< the gateway's NetworkAccessPointID
  int pid = 0;            //!< the gateway's AlternativeUserID
};

//! What the index knows of the record's exam (empty strings when it names none or is unknown).
struct ExamFacts {
  std::string study_instance_uid;
  std::string patient_name;  //!< UTF-8, as stored
};

//! The DICOM audit event of a record's action.
struct AuditEvent {
  const char* code;       //!< EventID csd-code (DCM)
  const char* name;       //!< its meaning
  char action;            //!< EventActionCode: C, R, U, D or E
  const char* type_code;  //!< EventTypeCode csd-code (DCM), or nullptr
  const char* type_name;  //!< its meaning
};
AuditEvent EventOf(absl::string_view action, bool names_exam);

//! The whole message, one line of XML (no declaration), valid under the PS3.15 A.5.1 schema.
std::string DicomAuditMessage(const storage::AuditRecord& record, const ExamFacts& exam,
                              const AuditSource& source);

}  // namespace rdg::atna
