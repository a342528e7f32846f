#include "gateway/identity/patient_match.h"

#include <utility>

#include <glog/logging.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "storage/base/status_macros.h"
#include "storage/formats/patient_identifiers.h"

namespace rdg::identity {
namespace {

//! One written form of a name: family, given and middle names (components 1–3) without
//! separators, spaces (ASCII and U+3000) or ASCII case. Further components (prefix, suffix,
//! HL7's name type code) do not tell people apart.
std::string NameKey(absl::string_view group) {
  std::string key;
  int component = 0;
  for (absl::string_view part : absl::StrSplit(group, '^')) {
    if (++component > 3) break;
    std::string p(part);
    absl::StrReplaceAll({{"\xE3\x80\x80", ""}}, &p);  // U+3000 IDEOGRAPHIC SPACE
    for (char c : p) {
      if (c != ' ' && c != '\t') key.push_back(absl::ascii_toupper(c));
    }
  }
  return key;
}

std::vector<std::string> NameKeys(const std::string& name) {
  std::vector<std::string> keys;
  for (absl::string_view group : absl::StrSplit(name, '=')) {
    std::string key = NameKey(group);
    if (!key.empty()) keys.push_back(std::move(key));
  }
  return keys;
}

bool IsAscii(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

//! How two names compare: written forms are grouped by script (ASCII — alphabetic or pinyin —
//! and the rest — characters, kana, hangul). Names agree when they share a form and, in every
//! script both are written in, share a form of that script: ZHANG^WEI=张伟 and ZHANG^WEI=章伟 do
//! not agree. Names with no script in common cannot be compared.
enum class NameComparison { kAgree, kDisagree, kNotComparable };

NameComparison CompareNames(const std::string& a, const std::string& b) {
  const std::vector<std::string> x = NameKeys(a), y = NameKeys(b);
  bool shared_script = false;
  for (bool ascii : {true, false}) {
    bool in_x = false, in_y = false, match = false;
    for (const auto& kx : x) {
      if (IsAscii(kx) != ascii) continue;
      in_x = true;
      for (const auto& ky : y) match |= IsAscii(ky) == ascii && kx == ky;
    }
    for (const auto& ky : y) in_y |= IsAscii(ky) == ascii;
    if (in_x && in_y) {
      shared_script = true;
      if (!match) return NameComparison::kDisagree;
    }
  }
  return shared_script ? NameComparison::kAgree : NameComparison::kNotComparable;
}

//! DICOM sex codes and HL7's (administrative sex): M, F, O; anything else is unknown.
std::string SexCode(const std::string& sex) {
  const std::string s = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(sex));
  return s == "M" || s == "F" || s == "O" ? s : "";
}

std::string Trimmed(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

//! Differ when both state a value and the values are not the same.
bool BothStatedAndDiffer(const std::string& a, const std::string& b) {
  return !a.empty() && !b.empty() && a != b;
}

//! A national ID that may link exams: still usable under today's rules (exams indexed before
//! the rules existed may hold a placeholder).
bool UsableNationalId(const storage::PatientRecord& p) {
  return !p.national_id.empty() &&
         formats::ResidentIdProblem(p.national_id, p.birth_date, SexCode(p.sex)).empty();
}

}  // namespace

bool IsPlaceholderId(const std::string& id) {
  const std::string t = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(id));
  if (t.size() <= 1) return true;  // "", "0", "-", "X"
  // 000…, 999…, XXX…: what devices write when nobody typed a number.
  if ((t[0] == '0' || t[0] == '9' || t[0] == 'X') &&
      t.find_first_not_of(t[0]) == std::string::npos) {
    return true;
  }
  for (const char* known : {"UNKNOWN", "NONE", "NULL", "N/A", "NA", "ANONYMOUS", "ANON", "TEST",
                            "NOID", "NO ID", "-"}) {
    if (t == known) return true;
  }
  return false;
}

std::vector<std::string> Disagreements(const storage::PatientRecord& a,
                                       const storage::PatientRecord& b, Strictness strictness) {
  std::vector<std::string> fields;
  const bool same_exam = strictness == Strictness::kSameExam;
  const bool local = strictness == Strictness::kLinkLocalId;
  if (same_exam || local) {
    // Within an exam a patient ID stated on one side only is a difference too: an exam begun
    // without one must not take in any patient's objects.
    if (same_exam ? Trimmed(a.patient_id) != Trimmed(b.patient_id)
                  : BothStatedAndDiffer(Trimmed(a.patient_id), Trimmed(b.patient_id))) {
      fields.push_back("patient ID");
    }
    if (BothStatedAndDiffer(Trimmed(a.id_issuer), Trimmed(b.id_issuer))) fields.push_back("issuer");
  }
  if (BothStatedAndDiffer(a.national_id, b.national_id)) fields.push_back("national ID");
  switch (CompareNames(a.name, b.name)) {
    case NameComparison::kAgree:
      break;
    case NameComparison::kDisagree:
      fields.push_back("name");
      break;
    case NameComparison::kNotComparable:
      // One object of a study in pinyin, another in characters, same patient ID: the same
      // person as far as can be told. Linking two exams needs a name both can be compared on.
      if (!same_exam) fields.push_back("name");
      break;
  }
  // A local patient ID says little: linking on it needs sex and birth date stated and equal.
  using Compare = bool (*)(const std::string&, const std::string&);
  const Compare differ =
      local ? +[](const std::string& x, const std::string& y) { return x.empty() || x != y; }
            : Compare{&BothStatedAndDiffer};
  if (differ(SexCode(a.sex), SexCode(b.sex))) fields.push_back("sex");
  if (differ(Trimmed(a.birth_date), Trimmed(b.birth_date))) fields.push_back("birth date");
  return fields;
}

absl::StatusOr<std::vector<storage::ExamRecord>> PatientLinker::SamePatient(
    const storage::ExamRecord& exam, int limit) {
  storage::ExamRecord probe = exam;
  if (!UsableNationalId(probe.patient)) probe.patient.national_id.clear();
  if (IsPlaceholderId(probe.patient.patient_id)) probe.patient.patient_id.clear();
  if (probe.patient.national_id.empty() && probe.patient.patient_id.empty()) {
    return std::vector<storage::ExamRecord>{};
  }
  // Candidates beyond `limit`: those that disagree must not crowd out the patient's own exams.
  RDG_ASSIGN_OR_RETURN(auto candidates, exams_.FindPriors(probe, kMaxCandidates));
  std::vector<storage::ExamRecord> same;
  for (auto& candidate : candidates) {
    const bool by_national_id = !probe.patient.national_id.empty() &&
                                candidate.patient.national_id == probe.patient.national_id;
    std::vector<std::string> fields =
        Disagreements(exam.patient, candidate.patient,
                      by_national_id ? Strictness::kLinkExams : Strictness::kLinkLocalId);
    if (fields.empty()) {
      if (static_cast<int>(same.size()) < limit) same.push_back(std::move(candidate));
      continue;
    }
    // The review list is kept on a best-effort basis: a failure to record never hides priors.
    if (auto s = RecordPair(storage::IdentityConflictKind::kDemographicsDisagree, exam, candidate,
                            std::move(fields));
        !s.ok()) {
      LOG(WARNING) << "exam " << exam.exam_id << ": cannot list an identity conflict: " << s;
    }
  }
  return same;
}

absl::Status PatientLinker::ReviewNewExam(const storage::ExamRecord& exam) {
  if (!exam.patient.national_id_problem.empty()) {
    RDG_RETURN_IF_ERROR(
        conflicts_.RecordIdentityConflict({0,
                                           clock_.Now(),
                                           storage::IdentityConflictKind::kNationalIdRefused,
                                           exam.exam_id,
                                           exam.origin_institution,
                                           "",
                                           "",
                                           {"national ID"},
                                           exam.patient.national_id_problem}));
  }
  if (IsPlaceholderId(exam.patient.patient_id)) {
    RDG_RETURN_IF_ERROR(conflicts_.RecordIdentityConflict(
        {0,
         clock_.Now(),
         storage::IdentityConflictKind::kPlaceholderPatientId,
         exam.exam_id,
         exam.origin_institution,
         "",
         "",
         {"patient ID"},
         "a placeholder patient ID links nothing: give the patient's own"}));
  }
  RDG_RETURN_IF_ERROR(SamePatient(exam, 100).status());
  if (exam.exam_type != "LAB" || exam.accession_number.empty()) return absl::OkStatus();
  RDG_ASSIGN_OR_RETURN(auto orders,
                       exams_.FindLabOrders(exam.origin_institution, exam.accession_number, 20));
  for (const auto& other : orders) {
    if (other.exam_id == exam.exam_id) continue;
    std::vector<std::string> fields =
        Disagreements(exam.patient, other.patient, Strictness::kSameExam);
    if (!fields.empty()) {
      RDG_RETURN_IF_ERROR(RecordPair(storage::IdentityConflictKind::kOrderOfAnotherPatient, exam,
                                     other, std::move(fields)));
    }
  }
  return absl::OkStatus();
}

absl::Status PatientLinker::RecordRefusedJoin(const storage::ExamRecord& existing,
                                              storage::IdentityConflictKind kind,
                                              std::vector<std::string> fields,
                                              const std::string& detail) {
  return conflicts_.RecordIdentityConflict({0, clock_.Now(), kind, existing.exam_id,
                                            existing.origin_institution, "", "", std::move(fields),
                                            detail});
}

absl::Status PatientLinker::RecordPair(storage::IdentityConflictKind kind,
                                       const storage::ExamRecord& a, const storage::ExamRecord& b,
                                       std::vector<std::string> fields) {
  // One row per pair, whichever exam was looked at first.
  const bool a_first = a.exam_id < b.exam_id;
  const storage::ExamRecord& x = a_first ? a : b;
  const storage::ExamRecord& y = a_first ? b : a;
  return conflicts_.RecordIdentityConflict({0, clock_.Now(), kind, x.exam_id, x.origin_institution,
                                            y.exam_id, y.origin_institution, std::move(fields),
                                            ""});
}

}  // namespace rdg::identity
