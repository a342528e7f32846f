#include "storage/postgres/pg_exam_changes.h"

#include "storage/postgres/pg_rows.h"

namespace rdg::storage::pg {

absl::StatusOr<std::optional<ExamRecord>> LockExam(Connection& conn, const std::string& exam_id) {
  static constexpr char kLock[] =
      "SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE exam_id = $1 FOR UPDATE";
  auto r = conn.Exec(kLock, {P(exam_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ReadExam(*r, 0);
}

absl::Status AddEvent(Connection& conn, const std::string& exam_id, ExamState state, absl::Time at,
                      const std::string& actor, const std::string& detail) {
  static constexpr char kInsert[] =
      "INSERT INTO exam_events (exam_id, state, at, actor, detail) VALUES ($1, $2, $3, $4, $5)";
  return conn.Exec(kInsert, {P(exam_id), P(int64_t{Number(state)}), P(at), P(actor), P(detail)})
      .status();
}

absl::Status StartStage(Connection& conn, const std::string& exam_id, Stage stage,
                        absl::Time started_at, absl::Time due_at) {
  static constexpr char kStart[] =
      "INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, priority, "
      "started_at, due_at) SELECT exam_id, $2, origin_institution, queue, exam_type, priority, "
      "$3, $4 FROM exams WHERE exam_id = $1 ON CONFLICT (exam_id, stage) DO NOTHING";
  return conn.Exec(kStart, {P(exam_id), P(int64_t{Number(stage)}), P(started_at), P(due_at)})
      .status();
}

absl::Status RestartStage(Connection& conn, const std::string& exam_id, Stage stage,
                          absl::Time started_at, absl::Time due_at) {
  static constexpr char kReopen[] =
      "UPDATE exam_stages SET started_at = $3, due_at = $4, ended_at = NULL, end_seq = NULL, "
      "breached_at = NULL, reviewing_institution = '' "
      "WHERE exam_id = $1 AND stage = $2 AND ended_at IS NOT NULL";
  auto r = conn.Exec(kReopen, {P(exam_id), P(int64_t{Number(stage)}), P(started_at), P(due_at)});
  if (!r.ok()) return r.status();
  return StartStage(conn, exam_id, stage, started_at, due_at);  // none yet: a new one
}

absl::Status EndStage(Connection& conn, const std::string& exam_id, Stage stage, absl::Time at,
                      const std::string& reviewing_institution) {
  // Numbered later, when the feed is read (PgSlaStore::ListStagesEndedAfter).
  static constexpr char kEnd[] =
      "UPDATE exam_stages SET ended_at = $3, reviewing_institution = $4, "
      "breached_at = CASE WHEN breached_at IS NULL AND $3 > due_at THEN $3 ELSE breached_at END "
      "WHERE exam_id = $1 AND stage = $2 AND ended_at IS NULL";
  return conn.Exec(kEnd, {P(exam_id), P(int64_t{Number(stage)}), P(at), P(reviewing_institution)})
      .status();
}

absl::Status MoveRunningStages(Connection& conn, const std::string& exam_id,
                               const std::string& queue) {
  static constexpr char kMove[] =
      "UPDATE exam_stages SET queue = $2 WHERE exam_id = $1 AND ended_at IS NULL";
  return conn.Exec(kMove, {P(exam_id), P(queue)}).status();
}

absl::Status EndClaim(Connection& conn, const std::string& exam_id, absl::Time at,
                      const std::string& actor, const std::string& detail) {
  static constexpr char kDelete[] = "DELETE FROM claims WHERE exam_id = $1";
  if (auto d = conn.Exec(kDelete, {P(exam_id)}); !d.ok()) return d.status();
  static constexpr char kRouted[] =
      "UPDATE exams SET state = $2, updated_at = $3 WHERE exam_id = $1 AND state = $4";
  if (auto u = conn.Exec(kRouted, {P(exam_id), P(int64_t{Number(ExamState::kRouted)}), P(at),
                                   P(int64_t{Number(ExamState::kClaimed)})});
      !u.ok()) {
    return u.status();
  }
  return AddEvent(conn, exam_id, ExamState::kReleased, at, actor, detail);
}

}  // namespace rdg::storage::pg
