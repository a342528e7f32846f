#include "storage/formats/patient_identifiers.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rdg::formats {
namespace {

//! Province-level codes of GB/T 2260 that lead a resident identity number (83: residence
//! permits of Taiwan residents).
bool IsProvinceCode(int code) {
  static constexpr std::array<int, 35> kCodes = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34,
                                                 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
                                                 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83};
  for (int c : kCodes) {
    if (c == code) return true;
  }
  return false;
}

//! Shaped like a resident identity number: 17 digits and a digit or X.
bool HasNationalIdShape(absl::string_view id) {
  if (id.size() != 18) return false;
  for (size_t i = 0; i < 17; ++i) {
    if (!absl::ascii_isdigit(id[i])) return false;
  }
  return absl::ascii_isdigit(id[17]) || id[17] == 'X' || id[17] == 'x';
}

//! ISO 7064 MOD 11-2 over the first 17 digits: weights 2^(17-i) mod 11.
char CheckCharacter(absl::string_view id) {
  static constexpr std::array<int, 17> kWeights = {7, 9, 10, 5,  8, 4, 2, 1, 6,
                                                   3, 7, 9,  10, 5, 8, 4, 2};
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) sum += (id[i] - '0') * kWeights[i];
  const int check = (12 - sum % 11) % 11;
  return check == 10 ? 'X' : static_cast<char>('0' + check);
}

}  // namespace

bool IsNationalIdType(absl::string_view type) {
  const std::string t = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(type));
  return t == "NNCHN" || t == "NI" || t == "NN";
}

std::string ResidentIdProblem(absl::string_view id, absl::string_view birth_date,
                              absl::string_view sex) {
  if (!HasNationalIdShape(id)) return "it is not 17 digits and a check digit or X";
  if (id.substr(0, 17).find_first_not_of(id[0]) == absl::string_view::npos) {
    return "it is a placeholder (one digit repeated)";
  }
  // The specimen number printed in GB 11643-1999 itself, copied into systems as a placeholder.
  if (absl::EqualsIgnoreCase(id, "11010519491231002X")) {
    return "it is the standard's specimen number, not a person's";
  }
  if (absl::ascii_toupper(id[17]) != CheckCharacter(id)) return "the check digit is wrong";
  int province = 0;
  if (!absl::SimpleAtoi(id.substr(0, 2), &province) || !IsProvinceCode(province)) {
    return "its first two digits are no province's code";
  }
  int year = 0, month = 0, day = 0;  // digits already checked: the conversions cannot fail
  const bool digits = absl::SimpleAtoi(id.substr(6, 4), &year) &&
                      absl::SimpleAtoi(id.substr(10, 2), &month) &&
                      absl::SimpleAtoi(id.substr(12, 2), &day);
  const absl::CivilDay born(year, month, day);
  if (!digits || year < 1900 || born.month() != month || born.day() != day) {
    return "its birth date is not a date";
  }
  // No one is born tomorrow (a day's slack for time zones). The only wall-clock read here: a
  // plausibility bound, not a deadline.
  if (born > absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + 1) {
    return "its birth date is in the future";
  }
  if (birth_date.size() == 8 && birth_date != id.substr(6, 8)) {
    return "its birth date is not the patient's birth date";
  }
  const bool male = (id[16] - '0') % 2 == 1;  // the sequence code's last digit: odd for men
  if ((sex == "M" && !male) || (sex == "F" && male))
    return "its sex digit is not the patient's sex";
  return "";
}

NationalIdChoice ChooseNationalId(const std::vector<PatientIdentifier>& identifiers,
                                  absl::string_view birth_date, absl::string_view sex) {
  NationalIdChoice choice;
  for (const PatientIdentifier& candidate : identifiers) {
    const absl::string_view id = absl::StripAsciiWhitespace(candidate.id);
    const bool typed = IsNationalIdType(candidate.type);
    if (!typed && !HasNationalIdShape(id)) continue;  // a local ID, a medical record number
    const std::string problem = ResidentIdProblem(id, birth_date, sex);
    if (problem.empty()) {
      choice.id = absl::AsciiStrToUpper(id);
      choice.issuer = candidate.issuer.empty() && candidate.type.empty()
                          ? candidate.source
                          : absl::StrCat(candidate.issuer, "^", candidate.type);
      choice.problem.clear();
      return choice;
    }
    if (choice.problem.empty()) {
      choice.problem =
          absl::StrCat("the national ID in ", candidate.source,
                       typed ? absl::StrCat(" (", candidate.type, ")") : "", ": ", problem);
    }
  }
  return choice;
}

}  // namespace rdg::formats
