// ExamStore: exams and their objects — the group commit that makes uploads visible, the exams'
// lists, objects and history, and the lookups of the patient-identity rules (priors, lab orders).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "storage/records.h"

namespace rdg::storage {

//! The refusal of an object whose SOP Instance UID is stored with other bytes: the text a clinic
//! reads, whether ingest's early check finds it or the commit does (a concurrent upload).
inline absl::Status ChangedObjectError(absl::string_view sop_instance_uid) {
  return absl::AlreadyExistsError(absl::StrCat(
      "SOP Instance UID ", sop_instance_uid,
      " is already stored with different content; the stored object was kept. Give the "
      "corrected image a new SOP Instance UID (e.g. re-export it from the modality)"));
}

//! The more urgent of two priorities (STAT < URGENT < ROUTINE; unspecified loses): an exam
//! joined by a more urgent object becomes that urgent.
inline Priority MoreUrgent(Priority a, Priority b) {
  if (a == Priority::kUnspecified) return b;
  if (b == Priority::kUnspecified) return a;
  return a < b ? a : b;
}

class ExamStore {
 public:
  virtual ~ExamStore() = default;

  virtual absl::StatusOr<std::optional<ObjectRecord>> FindObject(
      const std::string& institution, const std::string& sop_instance_uid) = 0;
  //! An object of `institution` with these bytes, if any (resuming a finished upload).
  virtual absl::StatusOr<std::optional<ObjectRecord>> FindObjectByContent(
      const std::string& institution, const std::string& sha256_hex) = 0;
  //! Whether any object references the blob.
  virtual absl::StatusOr<bool> IsBlobReferenced(const std::string& sha256_hex) = 0;
  //! Commits a batch in ONE durable transaction (group commit). Per item: the outcome, or
  //! ALREADY_EXISTS if the SOP Instance UID is stored with other bytes (that item adds nothing).
  //! If the transaction itself fails, every item gets that error and nothing is visible.
  virtual std::vector<absl::StatusOr<CommitOutcome>> CommitObjects(
      absl::Span<const NewObject> batch) = 0;
  virtual absl::StatusOr<ExamPage> ListExams(const ExamQuery& query) = 0;
  virtual absl::StatusOr<std::optional<ExamRecord>> GetExam(const std::string& exam_id) = 0;
  //! The exams of a Study Instance UID, of every institution (usually one), by exam id. The
  //! caller decides which of them its principal may see.
  virtual absl::StatusOr<std::vector<ExamRecord>> FindExamsByStudy(
      const std::string& study_instance_uid) = 0;
  virtual absl::StatusOr<std::vector<ObjectRecord>> ListObjects(const std::string& exam_id) = 0;
  //! Up to `limit` objects of the exam after `after`, in the order of ListObjects.
  virtual absl::StatusOr<std::vector<ObjectRecord>> ListObjectsPage(
      const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) = 0;
  virtual absl::StatusOr<std::vector<ExamEventRecord>> ListEvents(const std::string& exam_id) = 0;
  //! Candidates for the same patient's other exams: same national ID (any institution), or same
  //! patient ID and issuer at the same origin institution. Newest first. Whether they are the
  //! same person (agreeing demographics) is the caller's decision.
  virtual absl::StatusOr<std::vector<ExamRecord>> FindPriors(const ExamRecord& exam,
                                                             int32_t limit) = 0;
  //! LAB exams of an origin institution with this order number (accession), newest first.
  virtual absl::StatusOr<std::vector<ExamRecord>> FindLabOrders(const std::string& institution,
                                                                const std::string& accession,
                                                                int32_t limit) = 0;
};

}  // namespace rdg::storage
