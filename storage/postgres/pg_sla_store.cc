#include "storage/postgres/pg_sla_store.h"

#include <algorithm>

#include "storage/index/columns.h"

namespace rdg::storage::pg {
namespace {

StageRecord ReadStage(const Result& r, int row) {
  StageRecord s;
  s.exam_id = r.Text(row, 0);
  s.stage = static_cast<Stage>(r.Int(row, 1));
  s.origin_institution = r.Text(row, 2);
  s.queue = r.Text(row, 3);
  s.exam_type = r.Text(row, 4);
  s.priority = static_cast<Priority>(r.Int(row, 5));
  s.reviewing_institution = r.Text(row, 6);
  s.started_at = r.Time(row, 7);
  s.due_at = r.Time(row, 8);
  s.ended_at = r.OptionalTime(row, 9);
  s.breached_at = r.OptionalTime(row, 10);
  s.end_seq = r.Int(row, 11);
  return s;
}

//! Times before the epoch are stored nowhere: the bound of an open range.
Param Since(absl::Time t) { return P(std::max(t, absl::UnixEpoch())); }

}  // namespace

absl::StatusOr<std::vector<StageRecord>> PgSlaStore::DetectBreaches(absl::Time now, int32_t limit) {
  // Stages another transaction is ending right now are skipped: they end on time or are
  // recorded as breached by their own end.
  static constexpr char kSweep[] =
      "UPDATE exam_stages SET breached_at = $1 WHERE (exam_id, stage) IN ("
      "  SELECT exam_id, stage FROM exam_stages "
      "  WHERE ended_at IS NULL AND breached_at IS NULL AND due_at < $1 "
      "  ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING " RDG_STAGE_COLUMNS;
  return pool_.InTransaction(
      "READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<std::vector<StageRecord>> {
        auto r = conn.Exec(kSweep, {P(now), P(int64_t{std::clamp(limit, 1, 100000)})});
        if (!r.ok()) return r.status();
        std::vector<StageRecord> rows = ReadRows(*r, ReadStage);
        std::sort(rows.begin(), rows.end(),
                  [](const StageRecord& a, const StageRecord& b) { return a.due_at < b.due_at; });
        return rows;
      });
}

absl::StatusOr<std::vector<StageRecord>> PgSlaStore::ListStagesEnded(absl::Time since,
                                                                     absl::Time until) {
  static constexpr char kList[] =
      "SELECT " RDG_STAGE_COLUMNS
      " FROM exam_stages WHERE ended_at IS NOT NULL AND ended_at >= $1 AND ended_at < $2";
  auto r = pool_.Query(kList, {Since(since), P(until)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadStage);
}

absl::Status PgSlaStore::NumberCompletions() {
  // One numbering at a time (the counter row's lock, to this transaction's end): completions
  // committed before its statement are numbered after every number given before; one that
  // commits later is numbered by a later call, after these. So a reader that has seen N never
  // finds a smaller number later, and nothing waits for a claim's or report's commit.
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::Status {
    static constexpr char kHead[] = "SELECT seq FROM feed_heads WHERE name = 'stages' FOR UPDATE";
    auto head = conn.Exec(kHead);
    if (!head.ok()) return head.status();
    if (head->rows() != 1)
      return absl::InternalError("postgres: the stage feed's counter is missing");
    static constexpr char kNumber[] =
        "WITH todo AS (SELECT exam_id, stage, row_number() OVER (ORDER BY ended_at, exam_id, "
        "stage) AS n FROM exam_stages WHERE ended_at IS NOT NULL AND end_seq IS NULL) "
        "UPDATE exam_stages s SET end_seq = $1 + todo.n FROM todo WHERE s.exam_id = todo.exam_id "
        "AND s.stage = todo.stage AND s.ended_at IS NOT NULL AND s.end_seq IS NULL "
        "RETURNING s.end_seq";
    auto numbered = conn.Exec(kNumber, {P(head->Int(0, 0))});
    if (!numbered.ok()) return numbered.status();
    if (numbered->rows() == 0) return absl::OkStatus();
    int64_t last = head->Int(0, 0);
    for (int i = 0; i < numbered->rows(); ++i) last = std::max(last, numbered->Int(i, 0));
    static constexpr char kAdvance[] = "UPDATE feed_heads SET seq = $1 WHERE name = 'stages'";
    return conn.Exec(kAdvance, {P(last)}).status();
  });
}

absl::StatusOr<std::vector<StageRecord>> PgSlaStore::ListStagesEndedAfter(int64_t after_end_seq,
                                                                          int32_t limit) {
  if (absl::Status s = NumberCompletions(); !s.ok()) return s;
  static constexpr char kList[] =
      "SELECT " RDG_STAGE_COLUMNS
      " FROM exam_stages WHERE end_seq IS NOT NULL AND end_seq > $1 ORDER BY end_seq LIMIT $2";
  auto r = pool_.Query(kList, {P(after_end_seq), P(int64_t{std::clamp(limit, 1, 100000)})});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadStage);
}

absl::StatusOr<std::vector<StageRecord>> PgSlaStore::ListBreaches(const BreachQuery& query) {
  const int64_t limit = std::clamp(query.limit, 1, 100000);
  static constexpr char kOpen[] =
      "SELECT " RDG_STAGE_COLUMNS
      " FROM exam_stages WHERE breached_at IS NOT NULL AND ended_at IS NULL "
      "ORDER BY due_at LIMIT $1";
  static constexpr char kSince[] =
      "SELECT " RDG_STAGE_COLUMNS
      " FROM exam_stages WHERE breached_at IS NOT NULL AND breached_at >= $2 "
      "ORDER BY breached_at DESC LIMIT $1";
  auto r = query.open_only ? pool_.Query(kOpen, {P(limit)})
                           : pool_.Query(kSince, {P(limit), Since(query.since)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadStage);
}

absl::StatusOr<std::vector<OpenBreachCount>> PgSlaStore::CountOpenBreaches() {
  static constexpr char kCount[] =
      "SELECT stage, count(*) FROM exam_stages WHERE breached_at IS NOT NULL AND ended_at IS NULL "
      "GROUP BY stage ORDER BY stage";
  auto r = pool_.Query(kCount, {});
  if (!r.ok()) return r.status();
  return ReadRows(*r, [](const Result& res, int row) {
    return OpenBreachCount{static_cast<Stage>(res.Int(row, 0)), res.Int(row, 1)};
  });
}

}  // namespace rdg::storage::pg
