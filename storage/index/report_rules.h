// The rules of reports every backend of the index applies inside the transaction that adds a
// version: who may add which version, and the exam's state after it.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "storage/index/report_store.h"

namespace rdg::storage {

//! The exam's state once a report of status `s` is added.
inline ExamState StateAfter(ReportStatus s) {
  return s == ReportStatus::kPreliminary ? ExamState::kPreliminary : ExamState::kFinal;
}

//! What the rules for a new report version look at: the exam and its claim and reports.
struct ReportingState {
  ExamState state = ExamState::kUnspecified;
  std::string origin_institution;
  std::string holder, holder_institution;  //!< the live claim's holder, if any
  std::string latest_signed;               //!< the latest FINAL or AMENDED version's id
  int32_t max_version = 0;
  std::string final_author;  //!< "user<US>institution" of the FINAL, if any
};

//! Who may add which version: a report by the holder of a live claim on an exam without a
//! FINAL; an addendum naming the latest signed version, by the FINAL's author or a reader
//! holding a claim for amendment.
inline absl::Status MayReport(const ReportRecord& report, const ReportingState& exam) {
  const bool holds_claim =
      exam.holder == report.reader_user && exam.holder_institution == report.reader_institution;
  if (report.status == ReportStatus::kAmended) {
    if (exam.state != ExamState::kFinal || exam.latest_signed.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("exam ", report.exam_id, " has no final report to amend yet"));
    }
    if (report.supersedes != exam.latest_signed) {
      return absl::FailedPreconditionError(
          absl::StrCat("an addendum must name the latest signed version ", exam.latest_signed,
                       " in supersedes"));
    }
    // The author of the FINAL amends their own report; anyone else of the exam's desk first
    // claims it for amendment (checked here, in the transaction that adds the version).
    const bool author =
        exam.final_author == absl::StrCat(report.reader_user, "\x1F", report.reader_institution);
    if (!author && !holds_claim) {
      const std::string by = exam.final_author.substr(0, exam.final_author.find('\x1F'));
      return absl::PermissionDeniedError(
          absl::StrCat("only the author of exam ", report.exam_id, "'s final report (", by,
                       ") or a reader of its desk holding a claim for amendment may amend it"));
    }
    return absl::OkStatus();
  }
  if (exam.state == ExamState::kFinal) {
    return absl::FailedPreconditionError(absl::StrCat(
        "exam ", report.exam_id, " already has a final report; write an addendum instead"));
  }
  if (!holds_claim) {
    return absl::FailedPreconditionError(absl::StrCat("only the holder of a live claim on exam ",
                                                      report.exam_id,
                                                      " may report on it; claim it first"));
  }
  return absl::OkStatus();
}

}  // namespace rdg::storage
