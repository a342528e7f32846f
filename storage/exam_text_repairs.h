// The one-time repair of exam text written before the index held only UTF-8 (schema version 11):
// what the gateway's start-up repair (gateway/ingest/text_repair) needs from the index, apart
// from the IndexStore the services use.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/records.h"

namespace rdg::storage {

//! An exam's stored text and the object it was taken from (its first object).
struct ExamText {
  ExamRecord exam;            //!< exam_id, patient, accession, body part, dates, description
  ObjectRecord first_object;  //!< kind and sha256_hex name the blob to read the text again from
};

class ExamTextRepairs {
 public:
  virtual ~ExamTextRepairs() = default;
  //! Whether the repair `name` (a row of pending_repairs) is still to be done.
  virtual absl::StatusOr<bool> RepairPending(const std::string& name) = 0;
  //! Up to `limit` exams after `after_exam_id` (in exam_id order, "" for the first page) with
  //! their first object.
  virtual absl::StatusOr<std::vector<ExamText>> ListExamText(const std::string& after_exam_id,
                                                             int limit) = 0;
  //! Replaces the exam's patient, accession number, body part, study date/time and description
  //! with `text`'s.
  virtual absl::Status RewriteExamText(const std::string& exam_id, const ExamRecord& text) = 0;
  //! Marks the repair `name` done.
  virtual absl::Status FinishRepair(const std::string& name) = 0;
};

}  // namespace rdg::storage
