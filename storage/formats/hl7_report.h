// A signed report as an HL7 v2.5.1 ORU^R01 for the hospital's HIS/LIS/EMR: the patient (PID),
// the order it answers (ORC, OBR: accession as placer number, exam id as filler number, the
// reader as principal result interpreter, F or C), the findings, the impression (flagged AA when
// critical) and, for an amendment, its reason as FT observations, and a reference pointer to the
// signed report. UTF-8 (MSH-18 "UNICODE UTF-8"), segments ended by CR, no MLLP framing.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rdg::formats {

struct ReportMessageInput {
  // MSH.
  std::string sending_facility;       //!< MSH-4: the reading institution
  std::string receiving_application;  //!< MSH-5: e.g. "HIS"
  std::string receiving_facility;     //!< MSH-6: the clinic's or county hospital's id
  std::string control_id;             //!< MSH-10: unique per message sent (≤ 20 characters)
  absl::Time sent_at;
  absl::TimeZone zone;  //!< every TS is written in this zone, with its offset

  // Patient (PID), as the exam has it.
  std::string patient_id;
  std::string issuer_of_patient_id;  //!< PID-3.4
  std::string patient_name;  //!< DICOM PN ("FAMILY^GIVEN=汉字^名"): groups become repetitions
  std::string birth_date;    //!< YYYYMMDD or empty
  std::string sex;           //!< M, F, O, U or empty

  // The order the report answers (ORC, OBR).
  std::string placer_order_number;  //!< the accession number
  std::string filler_order_number;  //!< RDG's exam id (assigning authority "RDG")
  std::string service_code;         //!< OBR-4.1, e.g. the exam type "CT_CHEST"
  std::string service_text;         //!< OBR-4.2, e.g. the study description
  std::string observed_at;          //!< OBR-7: the study date and time (DA+TM) or empty
  std::string diagnostic_section;   //!< OBR-24 (HL7 table 0074): "RAD", "EC", "LAB", …

  // The report version.
  bool amended = false;  //!< an AMENDED version: result status C, the reason as an addendum
  bool critical = false;
  std::string findings;  //!< may be empty
  std::string impression;
  std::string amendment_reason;
  std::string reader_user;  //!< the platform's user id
  std::string reader_name;  //!< PN, as for the patient
  absl::Time signed_at;
  //! Where the signed report is (OBX RP): e.g. "rdg:report/rp-7f3a/v2", or a URL.
  std::string signed_report_pointer;
};

//! The message. Text is escaped (\F\ \S\ \T\ \R\ \E\, line ends as \.br\, other control
//! characters replaced by U+FFFD).
std::string BuildReportOru(const ReportMessageInput& report);

}  // namespace rdg::formats
