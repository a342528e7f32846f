#include "storage/postgres/pg_identity_conflict_store.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace rdg::storage::pg {
namespace {

IdentityConflictRecord ReadConflict(const Result& r, int row) {
  IdentityConflictRecord c;
  c.seq = r.Int(row, 0);
  c.detected_at = r.Time(row, 1);
  c.kind = static_cast<IdentityConflictKind>(r.Int(row, 2));
  c.exam_id = r.Text(row, 3);
  c.origin_institution = r.Text(row, 4);
  c.other_exam_id = r.Text(row, 5);
  c.other_institution = r.Text(row, 6);
  const std::string fields = r.Text(row, 7);
  if (!fields.empty()) c.fields = absl::StrSplit(fields, ", ");
  c.detail = r.Text(row, 8);
  return c;
}

}  // namespace

absl::Status PgIdentityConflictStore::RecordIdentityConflict(const IdentityConflictRecord& c) {
  // Recording the same conflict again is no change: safe to send again on a lost connection.
  static constexpr char kInsert[] =
      "INSERT INTO identity_conflicts (detected_at, kind, exam_id, origin_institution, "
      "other_exam_id, other_institution, fields, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
      "ON CONFLICT (kind, exam_id, other_exam_id, detail) DO NOTHING";
  return pool_
      .Query(kInsert, {P(c.detected_at), P(int64_t{Number(c.kind)}), P(c.exam_id),
                       P(c.origin_institution), P(c.other_exam_id), P(c.other_institution),
                       P(absl::StrJoin(c.fields, ", ")), P(c.detail)})
      .status();
}

absl::StatusOr<std::vector<IdentityConflictRecord>> PgIdentityConflictStore::ListIdentityConflicts(
    absl::Time since, int32_t limit) {
  static constexpr char kList[] =
      "SELECT seq, detected_at, kind, exam_id, origin_institution, other_exam_id, "
      "other_institution, fields, detail FROM identity_conflicts WHERE detected_at >= $1 "
      "ORDER BY seq DESC LIMIT $2";
  auto r = pool_.Query(kList, {P(since == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                                               : absl::ToUnixMicros(since)),
                               P(int64_t{std::clamp(limit, 1, 1000)})});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadConflict);
}

}  // namespace rdg::storage::pg
