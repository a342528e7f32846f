// SqliteIndexStore: the outbound queue (outbound_jobs, outbound_plan; migration 0017). The one
// gateway of a SQLite index both plans and sends, so a job has one sender at a time.
#include <algorithm>

#include "storage/base/status_macros.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {
namespace {

using sqlite_internal::InWriteTransaction;
using sqlite_internal::Stmt;

#define RDG_OUTBOUND_COLUMNS                                                     \
  "job_id, destination, kind, exam_id, report_id, state, attempts, created_at, " \
  "next_attempt_at, done_at, detail"

OutboundJob ReadJob(const Stmt& s) {
  OutboundJob j;
  j.job_id = s.Int(0);
  j.destination = s.Text(1);
  j.kind = static_cast<OutboundKind>(s.Int(2));
  j.exam_id = s.Text(3);
  j.report_id = s.Text(4);
  j.state = static_cast<OutboundState>(s.Int(5));
  j.attempts = static_cast<int32_t>(s.Int(6));
  j.created_at = s.Time(7);
  j.next_attempt_at = s.Time(8);
  if (!s.IsNull(9)) j.done_at = s.Time(9);
  j.detail = s.Text(10);
  return j;
}

}  // namespace

absl::Status SqliteIndexStore::PlanJobs(const std::vector<OutboundJob>& jobs,
                                        int64_t planned_through, absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::Status {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    for (const OutboundJob& j : jobs) {
      RDG_ASSIGN_OR_RETURN(
          auto q, writer_->Prepare("INSERT INTO outbound_jobs (destination, kind, exam_id, "
                                   "report_id, state, attempts, created_at, next_attempt_at) "
                                   "VALUES (?, ?, ?, ?, ?, 0, ?, ?) "
                                   "ON CONFLICT (destination, kind, report_id) DO NOTHING"));
      q->Bind(1, j.destination)
          .Bind(2, int64_t{static_cast<int32_t>(j.kind)})
          .Bind(3, j.exam_id)
          .Bind(4, j.report_id)
          .Bind(5, int64_t{static_cast<int32_t>(OutboundState::kPending)})
          .Bind(6, now)
          .Bind(7, now);
      RDG_RETURN_IF_ERROR(q->Run());
    }
    RDG_ASSIGN_OR_RETURN(auto c, writer_->Prepare("UPDATE outbound_plan SET planned_through = "
                                                  "MAX(planned_through, ?) WHERE id = 1"));
    c->Bind(1, planned_through);
    return c->Run();
  });
}

absl::StatusOr<std::vector<OutboundJob>> SqliteIndexStore::DueJobs(const std::string& destination,
                                                                   absl::Time now, int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare("SELECT " RDG_OUTBOUND_COLUMNS
                    " FROM outbound_jobs j WHERE destination = ? AND state = 1 "
                    "AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbound_jobs e "
                    "WHERE e.exam_id = j.exam_id AND e.destination = j.destination "
                    "AND e.kind = j.kind AND e.state = 1 AND e.job_id < j.job_id) "
                    "ORDER BY next_attempt_at, job_id LIMIT ?"));
  q->Bind(1, destination).Bind(2, now).Bind(3, int64_t{std::clamp(limit, 1, 1000)});
  return sqlite_internal::CollectRows(*q, ReadJob);
}

absl::Status SqliteIndexStore::RecordAttempt(int64_t job_id, const OutboundAttempt& attempt,
                                             absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::Status {
    writer_mu_.AssertHeld();
    RDG_ASSIGN_OR_RETURN(auto q,
                         writer_->Prepare("SELECT state FROM outbound_jobs WHERE job_id = ?"));
    q->Bind(1, job_id);
    RDG_ASSIGN_OR_RETURN(bool found, q->Step());
    if (!found) return absl::NotFoundError(absl::StrCat("no outbound job ", job_id));
    if (q->Int(0) != static_cast<int32_t>(OutboundState::kPending)) {
      return absl::FailedPreconditionError(
          absl::StrCat("outbound job ", job_id, " is no longer pending"));
    }
    const bool done = attempt.outcome != OutboundState::kPending;
    RDG_ASSIGN_OR_RETURN(
        auto u, writer_->Prepare("UPDATE outbound_jobs SET state = ?, attempts = attempts + 1, "
                                 "next_attempt_at = ?, done_at = ?, detail = ? WHERE job_id = ?"));
    u->Bind(1, int64_t{static_cast<int32_t>(attempt.outcome)})
        .Bind(2, done ? now : attempt.retry_at)
        .Bind(4, attempt.detail)
        .Bind(5, job_id);
    if (done) u->Bind(3, now);  // else NULL
    return u->Run();
  });
}

absl::StatusOr<int64_t> SqliteIndexStore::RetryFailed(const std::string& destination,
                                                      absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(
      auto u, writer_->Prepare("UPDATE outbound_jobs SET state = 1, next_attempt_at = ?, "
                               "done_at = NULL WHERE state = 3 AND (? = '' OR destination = ?)"));
  u->Bind(1, now).Bind(2, destination).Bind(3, destination);
  RDG_RETURN_IF_ERROR(u->Run());
  return writer_->Changes();
}

absl::StatusOr<int64_t> SqliteIndexStore::PurgeSent(absl::Time before, int32_t limit) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(
      auto d,
      writer_->Prepare(
          "DELETE FROM outbound_jobs WHERE job_id IN (SELECT job_id FROM outbound_jobs AS j "
          "WHERE state = 2 AND done_at < ? AND done_at < (SELECT MAX(done_at) FROM outbound_jobs "
          "WHERE state = 2 AND destination = j.destination) ORDER BY done_at LIMIT ?)"));
  d->Bind(1, before).Bind(2, static_cast<int64_t>(limit));
  RDG_RETURN_IF_ERROR(d->Run());
  return writer_->Changes();
}

absl::StatusOr<std::vector<OutboundJob>> SqliteIndexStore::ListJobs(const std::string& exam_id) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare("SELECT " RDG_OUTBOUND_COLUMNS " FROM outbound_jobs WHERE exam_id = ? "
                            "ORDER BY job_id"));
  q->Bind(1, exam_id);
  return sqlite_internal::CollectRows(*q, ReadJob);
}

absl::StatusOr<std::vector<OutboundSummary>> SqliteIndexStore::SummarizeOutbound() {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT destination, SUM(state = 1), SUM(state = 2), SUM(state = 3), "
          "MIN(CASE WHEN state = 1 THEN created_at END), "
          "MAX(CASE WHEN state = 2 THEN done_at END), "
          "(SELECT detail FROM outbound_jobs l WHERE l.destination = j.destination "
          " AND l.state != 2 AND l.attempts > 0 ORDER BY l.next_attempt_at DESC, l.job_id DESC "
          " LIMIT 1) "
          "FROM outbound_jobs j GROUP BY destination ORDER BY destination"));
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) {
    OutboundSummary o;
    o.destination = s.Text(0);
    o.pending = s.Int(1);
    o.sent = s.Int(2);
    o.failed = s.Int(3);
    if (!s.IsNull(4)) o.oldest_pending_since = s.Time(4);
    if (!s.IsNull(5)) o.last_sent_at = s.Time(5);
    o.last_error = s.Text(6);
    return o;
  });
}

}  // namespace rdg::storage
