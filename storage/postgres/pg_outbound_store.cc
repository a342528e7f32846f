#include "storage/postgres/pg_outbound_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/index/columns.h"
#include "storage/postgres/pg_report_store.h"

namespace rdg::storage::pg {
namespace {

#define RDG_OUTBOUND_COLUMNS                                                     \
  "job_id, destination, kind, exam_id, report_id, state, attempts, created_at, " \
  "next_attempt_at, done_at, detail"

OutboundJob ReadJob(const Result& r, int row) {
  OutboundJob j;
  j.job_id = r.Int(row, 0);
  j.destination = r.Text(row, 1);
  j.kind = static_cast<OutboundKind>(r.Int(row, 2));
  j.exam_id = r.Text(row, 3);
  j.report_id = r.Text(row, 4);
  j.state = static_cast<OutboundState>(r.Int(row, 5));
  j.attempts = static_cast<int32_t>(r.Int(row, 6));
  j.created_at = r.Time(row, 7);
  j.next_attempt_at = r.Time(row, 8);
  j.done_at = r.OptionalTime(row, 9);
  j.detail = r.Text(row, 10);
  return j;
}

Param PState(OutboundState s) { return P(int64_t{static_cast<int32_t>(s)}); }

}  // namespace

absl::StatusOr<std::vector<ReportRecord>> PgOutboundStore::UnplannedReports(int32_t limit) {
  static constexpr char kUnplanned[] =
      "SELECT " RDG_REPORT_COLUMNS
      " FROM reports WHERE seq > (SELECT planned_through FROM outbound_plan) AND status <> $1 "
      "ORDER BY seq LIMIT $2";
  auto r = pool_.Query(kUnplanned, {P(int64_t{Number(ReportStatus::kPreliminary)}),
                                    P(int64_t{std::clamp(limit, 1, 1000)})});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadReport);
}

absl::Status PgOutboundStore::PlanJobs(const std::vector<OutboundJob>& jobs,
                                       int64_t planned_through, absl::Time now) {
  static constexpr char kInsert[] =
      "INSERT INTO outbound_jobs (destination, kind, exam_id, report_id, state, attempts, "
      "created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6) "
      "ON CONFLICT (destination, kind, report_id) DO NOTHING";
  static constexpr char kCursor[] =
      "UPDATE outbound_plan SET planned_through = GREATEST(planned_through, $1) WHERE id = 1";
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::Status {
    for (const OutboundJob& j : jobs) {
      auto ins = conn.Exec(
          kInsert, {P(j.destination), P(int64_t{static_cast<int32_t>(j.kind)}), P(j.exam_id),
                    P(j.report_id), PState(OutboundState::kPending), P(now)});
      if (!ins.ok()) return ins.status();
    }
    auto c = conn.Exec(kCursor, {P(planned_through)});
    return c.ok() ? absl::OkStatus() : c.status();
  });
}

absl::StatusOr<std::vector<OutboundJob>> PgOutboundStore::DueJobs(const std::string& destination,
                                                                  absl::Time now, int32_t limit) {
  static constexpr char kDue[] =
      "SELECT " RDG_OUTBOUND_COLUMNS
      " FROM outbound_jobs j WHERE destination = $1 AND state = 1 AND next_attempt_at <= $2 "
      "AND NOT EXISTS (SELECT 1 FROM outbound_jobs e WHERE e.exam_id = j.exam_id "
      "AND e.destination = j.destination AND e.kind = j.kind AND e.state = 1 "
      "AND e.job_id < j.job_id) "
      "ORDER BY next_attempt_at, job_id LIMIT $3";
  auto r = pool_.Query(kDue, {P(destination), P(now), P(int64_t{std::clamp(limit, 1, 1000)})});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadJob);
}

absl::Status PgOutboundStore::RecordAttempt(int64_t job_id, const OutboundAttempt& attempt,
                                            absl::Time now) {
  const bool done = attempt.outcome != OutboundState::kPending;
  static constexpr char kRecord[] =
      "UPDATE outbound_jobs SET state = $2, attempts = attempts + 1, next_attempt_at = $3, "
      "done_at = $4, detail = $5 WHERE job_id = $1 AND state = 1";
  auto u =
      pool_.Query(kRecord, {P(job_id), PState(attempt.outcome), P(done ? now : attempt.retry_at),
                            done ? P(now) : Param(std::nullopt), P(attempt.detail)});
  if (!u.ok()) return u.status();
  if (u->affected() == 1) return absl::OkStatus();
  static constexpr char kExists[] = "SELECT 1 FROM outbound_jobs WHERE job_id = $1";
  auto e = pool_.Query(kExists, {P(job_id)});
  if (!e.ok()) return e.status();
  if (e->rows() == 0) return absl::NotFoundError(absl::StrCat("no outbound job ", job_id));
  return absl::FailedPreconditionError(
      absl::StrCat("outbound job ", job_id, " is no longer pending"));
}

absl::StatusOr<int64_t> PgOutboundStore::RetryFailed(const std::string& destination,
                                                     absl::Time now) {
  static constexpr char kRetry[] =
      "UPDATE outbound_jobs SET state = 1, next_attempt_at = $1, done_at = NULL "
      "WHERE state = 3 AND ($2 = '' OR destination = $2)";
  auto u = pool_.Query(kRetry, {P(now), P(destination)});
  if (!u.ok()) return u.status();
  return u->affected();
}

absl::StatusOr<int64_t> PgOutboundStore::PurgeSent(absl::Time before, int32_t limit) {
  static constexpr char kPurge[] =
      "DELETE FROM outbound_jobs WHERE job_id IN (SELECT job_id FROM outbound_jobs AS j "
      "WHERE state = 2 AND done_at < $1 AND done_at < (SELECT max(done_at) FROM outbound_jobs "
      "WHERE state = 2 AND destination = j.destination) ORDER BY done_at LIMIT $2)";
  auto d = pool_.Query(kPurge, {P(before), P(static_cast<int64_t>(limit))});
  if (!d.ok()) return d.status();
  return d->affected();
}

absl::StatusOr<std::vector<OutboundJob>> PgOutboundStore::ListJobs(const std::string& exam_id) {
  static constexpr char kList[] =
      "SELECT " RDG_OUTBOUND_COLUMNS " FROM outbound_jobs WHERE exam_id = $1 ORDER BY job_id";
  auto r = pool_.Query(kList, {P(exam_id)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadJob);
}

absl::StatusOr<std::vector<OutboundSummary>> PgOutboundStore::SummarizeOutbound() {
  static constexpr char kSummary[] =
      "SELECT destination, count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2), "
      "count(*) FILTER (WHERE state = 3), min(created_at) FILTER (WHERE state = 1), "
      "max(done_at) FILTER (WHERE state = 2), "
      "(SELECT detail FROM outbound_jobs l WHERE l.destination = j.destination "
      " AND l.state <> 2 AND l.attempts > 0 ORDER BY l.next_attempt_at DESC, l.job_id DESC "
      " LIMIT 1) "
      "FROM outbound_jobs j GROUP BY destination ORDER BY destination";
  auto r = pool_.Query(kSummary, {});
  if (!r.ok()) return r.status();
  return ReadRows(*r, [](const Result& res, int row) {
    OutboundSummary o;
    o.destination = res.Text(row, 0);
    o.pending = res.Int(row, 1);
    o.sent = res.Int(row, 2);
    o.failed = res.Int(row, 3);
    o.oldest_pending_since = res.OptionalTime(row, 4);
    o.last_sent_at = res.OptionalTime(row, 5);
    o.last_error = res.Text(row, 6);
    return o;
  });
}

}  // namespace rdg::storage::pg
