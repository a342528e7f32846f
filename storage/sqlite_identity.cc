// SqliteIndexStore: the patient-identity review list (identity_conflicts, migration 0013).
#include <algorithm>
#include <limits>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/base/status_macros.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {

using sqlite_internal::Stmt;

absl::Status SqliteIndexStore::RecordIdentityConflict(const IdentityConflictRecord& c) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(
      auto q,
      writer_->Prepare(
          "INSERT OR IGNORE INTO identity_conflicts (detected_at, kind, exam_id, "
          "origin_institution, "
          "other_exam_id, other_institution, fields, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  q->Bind(1, c.detected_at)
      .Bind(2, int64_t{Number(c.kind)})
      .Bind(3, c.exam_id)
      .Bind(4, c.origin_institution)
      .Bind(5, c.other_exam_id)
      .Bind(6, c.other_institution)
      .Bind(7, absl::StrJoin(c.fields, ", "))
      .Bind(8, c.detail);
  return q->Run();
}

absl::StatusOr<std::vector<IdentityConflictRecord>> SqliteIndexStore::ListIdentityConflicts(
    absl::Time since, int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT seq, detected_at, kind, exam_id, origin_institution, other_exam_id, "
          "other_institution, fields, detail FROM identity_conflicts WHERE detected_at >= ? "
          "ORDER BY seq DESC LIMIT ?"));
  q->Bind(1, since == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                           : absl::ToUnixMicros(since))
      .Bind(2, int64_t{std::clamp(limit, 1, 1000)});
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) {
    IdentityConflictRecord c;
    c.seq = s.Int(0);
    c.detected_at = s.Time(1);
    c.kind = static_cast<IdentityConflictKind>(s.Int(2));
    c.exam_id = s.Text(3);
    c.origin_institution = s.Text(4);
    c.other_exam_id = s.Text(5);
    c.other_institution = s.Text(6);
    const std::string fields = s.Text(7);
    if (!fields.empty()) c.fields = absl::StrSplit(fields, ", ");
    c.detail = s.Text(8);
    return c;
  });
}

}  // namespace rdg::storage
