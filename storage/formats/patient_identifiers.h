// Patient identifiers as DICOM and HL7 carry them, and the Chinese resident identity number
// (居民身份证号码, GB 11643-1999) among them: the one identifier that may link a person's exams
// across institutions, so it is accepted only when it is well formed, carries a valid ISO 7064
// MOD 11-2 check digit, and agrees with the birth date and sex the object states.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rdg::formats {

//! One identifier of a patient, with what the sender said about it.
struct PatientIdentifier {
  std::string id;
  //! Who assigned it: DICOM Issuer of Patient ID (0010,0021), HL7 CX.4 assigning authority.
  std::string issuer;
  //! Its type: HL7 CX.5 identifier type code (NNCHN, NI, MR, …), DICOM Type of Patient ID
  //! (0010,0022); empty when the sender gave none.
  std::string type;
  //! Where it was found, for messages ("(0010,1000)", "PID-3"); never patient data.
  std::string source;
};

//! HL7 identifier type codes that declare a national person identifier (table 0203: NNxxx with
//! the ISO country code, NI national unique individual identifier).
bool IsNationalIdType(absl::string_view type);

//! Why `id` is not a usable resident identity number, or "" when it is. `birth_date` (YYYYMMDD)
//! and `sex` (M/F) are the object's own; when given, the number must agree with them. The
//! reason names the rule broken, never the number.
std::string ResidentIdProblem(absl::string_view id, absl::string_view birth_date,
                              absl::string_view sex);

//! The national ID chosen among a patient's identifiers.
struct NationalIdChoice {
  std::string id;      //!< upper-case, 18 characters; empty when none is usable
  std::string issuer;  //!< "issuer^type" as the sender gave them, or the source when untyped
  //! When no identifier is usable but one was offered as (or looks like) a national ID: why it
  //! was not used ("(0010,1000): the check digit is wrong"). No patient data.
  std::string problem;
};

//! The first usable national ID among `identifiers`: those typed as national identifiers, and
//! untyped ones of the national ID's shape (18 characters, digits and a final digit or X).
NationalIdChoice ChooseNationalId(const std::vector<PatientIdentifier>& identifiers,
                                  absl::string_view birth_date, absl::string_view sex);

}  // namespace rdg::formats
