// SqliteIndexStore: SLA stage clocks (table exam_stages, migration 0008). Stages are started and
// ended inside the transactions that change an exam (commit, claim, report, acknowledgement);
// this file holds those helpers and the reads behind turnaround figures and breach lists.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/base/status_macros.h"
#include "storage/index/columns.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {
namespace {

using sqlite_internal::InWriteTransaction;
using sqlite_internal::Stmt;

StageRecord ReadStage(const Stmt& s) {
  StageRecord r;
  r.exam_id = s.Text(0);
  r.stage = static_cast<Stage>(s.Int(1));
  r.origin_institution = s.Text(2);
  r.queue = s.Text(3);
  r.exam_type = s.Text(4);
  r.priority = static_cast<Priority>(s.Int(5));
  r.reviewing_institution = s.Text(6);
  r.started_at = s.Time(7);
  r.due_at = sqlite_internal::ReadDue(s.Int(8));
  if (!s.IsNull(9)) r.ended_at = s.Time(9);
  if (!s.IsNull(10)) r.breached_at = s.Time(10);
  r.end_seq = s.Int(11);
  return r;
}

}  // namespace

absl::Status SqliteIndexStore::StartStage(const std::string& exam_id, Stage stage,
                                          absl::Time started_at, absl::Time due_at) {
  // The grouping attributes are the exam's; a stage starts once (INSERT OR IGNORE: an addendum
  // does not restart the acknowledgement clock of the first final report).
  RDG_ASSIGN_OR_RETURN(
      auto q,
      writer_->Prepare(
          "INSERT OR IGNORE INTO exam_stages (exam_id, stage, origin_institution, queue, "
          "exam_type, "
          "priority, started_at, due_at) SELECT exam_id, ?2, origin_institution, queue, exam_type, "
          "priority, ?3, ?4 FROM exams WHERE exam_id = ?1"));
  q->Bind(1, exam_id)
      .Bind(2, int64_t{Number(stage)})
      .Bind(3, started_at)
      .Bind(4, sqlite_internal::DueMicros(due_at));
  return q->Run();
}

absl::Status SqliteIndexStore::RestartStage(const std::string& exam_id, Stage stage,
                                            absl::Time started_at, absl::Time due_at) {
  RDG_ASSIGN_OR_RETURN(
      auto q,
      writer_->Prepare(
          "UPDATE exam_stages SET started_at = ?3, due_at = ?4, ended_at = NULL, end_seq = NULL, "
          "breached_at = NULL, reviewing_institution = '' "
          "WHERE exam_id = ?1 AND stage = ?2 AND ended_at IS NOT NULL"));
  q->Bind(1, exam_id)
      .Bind(2, int64_t{Number(stage)})
      .Bind(3, started_at)
      .Bind(4, sqlite_internal::DueMicros(due_at));
  RDG_RETURN_IF_ERROR(q->Run());
  q.reset();
  return StartStage(exam_id, stage, started_at, due_at);  // none yet: a new one
}

absl::Status SqliteIndexStore::EndStage(const std::string& exam_id, Stage stage, absl::Time at,
                                        const std::string& reviewing_institution) {
  // end_seq: one more than the highest so far (MAX read from the unique partial index: a lookup;
  // left to itself SQLite scanned every stage, 3.5 ms at 1 M exams);
  // SQLite has one writer, so completion order is commit order. A late stage nobody swept yet
  // is recorded as breached now.
  RDG_ASSIGN_OR_RETURN(
      auto q, writer_->Prepare("UPDATE exam_stages SET ended_at = ?3, reviewing_institution = ?4, "
                               "end_seq = (SELECT COALESCE(MAX(end_seq), 0) + 1 FROM exam_stages "
                               "INDEXED BY exam_stages_end_seq WHERE end_seq IS NOT NULL), "
                               "breached_at = CASE WHEN breached_at IS NULL AND ?3 > due_at THEN "
                               "?3 ELSE breached_at END "
                               "WHERE exam_id = ?1 AND stage = ?2 AND ended_at IS NULL"));
  q->Bind(1, exam_id).Bind(2, int64_t{Number(stage)}).Bind(3, at).Bind(4, reviewing_institution);
  return q->Run();
}

absl::Status SqliteIndexStore::MoveRunningStages(const std::string& exam_id,
                                                 const std::string& queue) {
  RDG_ASSIGN_OR_RETURN(
      auto q,
      writer_->Prepare("UPDATE exam_stages SET queue = ? WHERE exam_id = ? AND ended_at IS NULL"));
  q->Bind(1, queue).Bind(2, exam_id);
  return q->Run();
}

absl::StatusOr<std::vector<StageRecord>> SqliteIndexStore::DetectBreaches(absl::Time now,
                                                                          int32_t limit) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::StatusOr<std::vector<StageRecord>> {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(
        auto q, writer_->Prepare("UPDATE exam_stages SET breached_at = ?1 WHERE rowid IN ("
                                 "  SELECT rowid FROM exam_stages INDEXED BY exam_stages_running "
                                 "  WHERE ended_at IS NULL AND breached_at IS NULL AND due_at < ?1 "
                                 "  ORDER BY due_at LIMIT ?2) RETURNING " RDG_STAGE_COLUMNS));
    q->Bind(1, now).Bind(2, int64_t{std::clamp(limit, 1, 100000)});
    RDG_ASSIGN_OR_RETURN(auto rows, sqlite_internal::CollectRows(*q, ReadStage));
    std::sort(rows.begin(), rows.end(),
              [](const StageRecord& a, const StageRecord& b) { return a.due_at < b.due_at; });
    return rows;
  });
}

absl::StatusOr<std::vector<StageRecord>> SqliteIndexStore::ListStagesEnded(absl::Time since,
                                                                           absl::Time until) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare("SELECT " RDG_STAGE_COLUMNS " FROM exam_stages INDEXED BY exam_stages_ended "
                    "WHERE ended_at IS NOT NULL AND ended_at >= ? AND ended_at < ?"));
  q->Bind(1, sqlite_internal::DueMicros(std::max(since, absl::UnixEpoch())))
      .Bind(2, sqlite_internal::DueMicros(until));
  return sqlite_internal::CollectRows(*q, ReadStage);
}

absl::StatusOr<std::vector<StageRecord>> SqliteIndexStore::ListStagesEndedAfter(
    int64_t after_end_seq, int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare("SELECT " RDG_STAGE_COLUMNS " FROM exam_stages INDEXED BY exam_stages_end_seq "
                    "WHERE end_seq IS NOT NULL AND end_seq > ? ORDER BY end_seq LIMIT ?"));
  q->Bind(1, after_end_seq).Bind(2, int64_t{std::clamp(limit, 1, 100000)});
  return sqlite_internal::CollectRows(*q, ReadStage);
}

absl::StatusOr<std::vector<StageRecord>> SqliteIndexStore::ListBreaches(const BreachQuery& query) {
  ReaderLease conn = AcquireReader();
  const int64_t limit = std::clamp(query.limit, 1, 100000);
  if (query.open_only) {
    RDG_ASSIGN_OR_RETURN(
        auto q,
        conn->Prepare(
            "SELECT " RDG_STAGE_COLUMNS " FROM exam_stages INDEXED BY exam_stages_open_breaches "
            "WHERE breached_at IS NOT NULL AND ended_at IS NULL ORDER BY due_at LIMIT ?"));
    q->Bind(1, limit);
    return sqlite_internal::CollectRows(*q, ReadStage);
  }
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT " RDG_STAGE_COLUMNS " FROM exam_stages INDEXED BY exam_stages_breached "
          "WHERE breached_at IS NOT NULL AND breached_at >= ? ORDER BY breached_at DESC LIMIT ?"));
  q->Bind(1, sqlite_internal::DueMicros(std::max(query.since, absl::UnixEpoch()))).Bind(2, limit);
  return sqlite_internal::CollectRows(*q, ReadStage);
}

absl::StatusOr<std::vector<OpenBreachCount>> SqliteIndexStore::CountOpenBreaches() {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT stage, count(*) FROM exam_stages INDEXED BY exam_stages_open_breaches "
          "WHERE breached_at IS NOT NULL AND ended_at IS NULL GROUP BY stage ORDER BY stage"));
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) {
    return OpenBreachCount{static_cast<Stage>(s.Int(0)), s.Int(1)};
  });
}

}  // namespace rdg::storage
