// SqliteIndexStore: lab observations of LAB exams (mutual recognition of results).
#include <algorithm>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/base/status_macros.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {
namespace {

using sqlite_internal::JsonArray;

LabResultRecord ReadLabResult(const sqlite_internal::Stmt& s) {
  LabResultRecord r;
  r.exam_id = s.Text(0);
  r.origin_institution = s.Text(1);
  r.code = s.Text(2);
  r.coding_system = s.Text(3);
  r.name = s.Text(4);
  r.value = s.Text(5);
  if (!s.IsNull(6)) r.numeric = s.Real(6);
  r.units = s.Text(7);
  r.reference_range = s.Text(8);
  std::string flags = s.Text(9);
  if (!flags.empty()) r.abnormal_flags = absl::StrSplit(flags, '~');
  r.observed_at = s.Text(10);
  r.critical = s.Int(11) != 0;
  r.order_service = s.Text(12);
  r.result_status = s.Text(13);
  return r;
}

}  // namespace

absl::Status SqliteIndexStore::InsertLabResults(const std::string& exam_id,
                                                const std::vector<LabResultRecord>& results) {
  for (const LabResultRecord& r : results) {
    RDG_ASSIGN_OR_RETURN(
        auto q,
        writer_->Prepare("INSERT INTO lab_results (exam_id, origin_institution, code, "
                         "coding_system, name, value, "
                         "numeric, units, reference_range, abnormal_flags, observed_at, critical, "
                         "order_service, "
                         "result_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    q->Bind(1, exam_id)
        .Bind(2, r.origin_institution)
        .Bind(3, r.code)
        .Bind(4, r.coding_system)
        .Bind(5, r.name)
        .Bind(6, r.value);
    if (r.numeric.has_value()) q->Bind(7, *r.numeric);
    q->Bind(8, r.units)
        .Bind(9, r.reference_range)
        .Bind(10, absl::StrJoin(r.abnormal_flags, "~"))
        .Bind(11, r.observed_at)
        .Bind(12, int64_t{r.critical})
        .Bind(13, r.order_service)
        .Bind(14, r.result_status);
    RDG_RETURN_IF_ERROR(q->Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LabResultRecord>> SqliteIndexStore::ListLabResults(
    const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) {
  if (exam_ids.empty()) return std::vector<LabResultRecord>{};
  ReaderLease conn = AcquireReader();
  // lab_results_by_exam (exam_id, code) serves each exam's lookup; the exams come from the
  // patient-matching rule of FindPriors, so the set is small.
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT exam_id, origin_institution, code, coding_system, name, value, numeric, units, "
          "reference_range, abnormal_flags, observed_at, critical, order_service, result_status "
          "FROM lab_results WHERE exam_id IN (SELECT value FROM json_each(?1)) "
          "AND (?2 IS NULL OR code IN (SELECT value FROM json_each(?2))) "
          "ORDER BY code, observed_at, seq"));
  q->Bind(1, JsonArray(exam_ids));
  if (!codes.empty()) q->Bind(2, JsonArray(codes));
  return sqlite_internal::CollectRows(*q, ReadLabResult);
}

}  // namespace rdg::storage
