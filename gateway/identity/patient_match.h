// Patient identity: whether two records are one person, and the links RDG makes between a
// patient's exams (priors, mutual recognition of results) only when they are.
//
// Rules (README "Patient identity"):
// - Across institutions, exams link only on a usable national ID (formats::ChooseNationalId) AND
//   agreeing demographics: the name (any written form — alphabetic, ideographic, phonetic —
//   shared; pinyin against characters is not a match, as nothing says they are the same person),
//   sex and birth date when both sides state them.
// - Within one institution, exams also link on the same patient ID from the same issuer (or an
//   unstated one), when name, sex and birth date are stated on both and agree; placeholder IDs
//   ("0", "UNKNOWN") link nothing.
// - An exam is one patient: an object whose patient ID, issuer, national ID, name, sex or birth
//   date disagrees with its exam's is refused.
// Every link refused for disagreement is recorded for the administrators (identity_conflicts).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/common/clock.h"
#include "storage/index/exam_store.h"
#include "storage/index/identity_conflict_store.h"
#include "storage/records.h"

namespace rdg::identity {

enum class Strictness {
  kSameExam,     //!< an object joining an exam: what either side states must agree
  kLinkExams,    //!< two exams sharing a national ID: both name the patient, and agree
  kLinkLocalId,  //!< two exams sharing a local patient ID: name, sex and birth date all stated
                 //!< on both and equal
};

//! What disagrees between two records of what should be one person — "patient ID", "issuer",
//! "national ID", "name", "sex", "birth date" — or nothing when they agree.
std::vector<std::string> Disagreements(const storage::PatientRecord& a,
                                       const storage::PatientRecord& b, Strictness strictness);

//! A local patient ID that identifies nobody: empty or one character, all zeros, nines or X
//! ("000", "9999"), or a word devices and clerks use for "unknown". Such IDs never link exams.
bool IsPlaceholderId(const std::string& id);

//! Finds a patient's other exams and keeps the review list of what was not linked.
class PatientLinker {
 public:
  PatientLinker(storage::ExamStore& exams, storage::IdentityConflictStore& conflicts,
                const Clock& clock)
      : exams_(exams), conflicts_(conflicts), clock_(clock) {}

  //! The exams of the same person as `exam`, newest first (at most `limit`); candidates that
  //! share an identifier but disagree are left out and recorded as conflicts.
  absl::StatusOr<std::vector<storage::ExamRecord>> SamePatient(const storage::ExamRecord& exam,
                                                               int limit);
  //! After a new exam is indexed: records a refused national ID, disagreeing exams that share
  //! its identifiers and, for lab exams, its order number used for another patient.
  absl::Status ReviewNewExam(const storage::ExamRecord& exam);
  //! An object refused because its patient is not its exam's.
  absl::Status RecordRefusedJoin(const storage::ExamRecord& existing,
                                 storage::IdentityConflictKind kind,
                                 std::vector<std::string> fields, const std::string& detail);

 private:
  absl::Status RecordPair(storage::IdentityConflictKind kind, const storage::ExamRecord& a,
                          const storage::ExamRecord& b, std::vector<std::string> fields);

  //! Candidates read per lookup (those that disagree are filtered out after).
  static constexpr int kMaxCandidates = 1000;
  storage::ExamStore& exams_;
  storage::IdentityConflictStore& conflicts_;
  const Clock& clock_;
};

}  // namespace rdg::identity
