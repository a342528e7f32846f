#include "storage/postgres/pg_worklist_store.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/index/claim_rules.h"
#include "storage/index/worklist_paging.h"
#include "storage/postgres/pg_exam_changes.h"
#include "storage/postgres/pg_rows.h"

namespace rdg::storage::pg {
namespace {

// exams_open_worklist and exams_open_by_queue (0002_exams_and_audit.sql) spell the open states.
static_assert(Number(ExamState::kRouted) == 2 && Number(ExamState::kClaimed) == 3 &&
                  Number(ExamState::kPreliminary) == 4,
              "the partial indexes of open exams hard-code the open states");

//! A new claim (ClaimExam's last step): its row, and for a claim to read the CLAIMED state and
//! the end of the claim stage; a claim for amendment leaves the exam FINAL.
absl::Status StartClaim(Connection& conn, const ClaimRecord& claim, bool amend) {
  static constexpr char kInsert[] =
      "INSERT INTO claims (exam_id, holder_user, holder_institution, claimed_at, expires_at) "
      "VALUES ($1, $2, $3, $4, $5)";
  if (auto r =
          conn.Exec(kInsert, {P(claim.exam_id), P(claim.holder_user), P(claim.holder_institution),
                              P(claim.claimed_at), P(claim.expires_at)});
      !r.ok()) {
    return r.status();
  }
  // The lease as a length: the event's time is shown to people in their zone.
  const std::string lease =
      absl::StrCat("lease ", absl::ToInt64Minutes(claim.expires_at - claim.claimed_at), " min");
  if (amend) {  // the exam stays FINAL: its report stands until an addendum is signed
    return AddEvent(conn, claim.exam_id, ExamState::kClaimed, claim.claimed_at, claim.holder_user,
                    absl::StrCat("for amendment, ", lease));
  }
  static constexpr char kClaimed[] =
      "UPDATE exams SET state = $2, updated_at = $3 WHERE exam_id = $1";
  if (auto u = conn.Exec(kClaimed, {P(claim.exam_id), P(int64_t{Number(ExamState::kClaimed)}),
                                    P(claim.claimed_at)});
      !u.ok()) {
    return u.status();
  }
  if (auto s = AddEvent(conn, claim.exam_id, ExamState::kClaimed, claim.claimed_at,
                        claim.holder_user, lease);
      !s.ok()) {
    return s;
  }
  return EndStage(conn, claim.exam_id, Stage::kReceivedToClaimed, claim.claimed_at,
                  claim.holder_institution);
}

absl::Status NoExam(const std::string& exam_id) {
  return absl::NotFoundError(absl::StrCat("no exam ", exam_id));
}

}  // namespace

absl::StatusOr<WorklistPage> PgWorklistStore::ListWorklist(const WorklistQuery& query,
                                                           absl::Time now) {
  absl::StatusOr<WorklistKey> after = ParseWorklistCursor(query.after);
  if (!after.ok()) return after.status();
  const std::vector<ExamState> states = WorklistStates(query);
  const int64_t limit = std::clamp<int64_t>(query.limit, 1, 1000);
  // Open states only (the usual case): the partial index of open exams in worklist order, read
  // until a page is full. Other states (e.g. FINAL) take the general path.
  const bool open_only = OnlyOpenStates(states);
#define RDG_WORKLIST_SELECT                                    \
  "SELECT " RDG_EXAM_COLUMNS                                   \
  ", holder_user, holder_institution, claimed_at, expires_at " \
  "FROM exams LEFT JOIN claims USING (exam_id) WHERE "
#define RDG_WORKLIST_FILTERS                                                                   \
  "queue = ANY($1::text[]) "                                                                   \
  "AND ($3::text[] IS NULL OR exam_type = ANY($3::text[])) "                                   \
  "AND ($4::integer[] IS NULL OR priority = ANY($4::integer[])) "                              \
  "AND ($9::text IS NULL OR patient_id = $9 OR strpos(lower(patient_name), lower($9)) > 0 "    \
  "     OR strpos(lower(replace(replace(patient_name, '^', ''), '=', '')), lower($9)) > 0 "    \
  "     OR strpos(lower(replace(replace(patient_name, '^', ' '), '=', ' ')), lower($9)) > 0) " \
  "AND (sla_due_at, priority, seq) > ($5::bigint, $6::integer, $7::bigint) "                   \
  "ORDER BY sla_due_at, priority, seq LIMIT $8"
  // Every open state (the usual worklist): the partial index's own predicate alone. Naming the
  // states again would make the planner count the same condition twice, expect a few rows, and
  // sort all of the queues' open exams instead of reading the index in order.
  static constexpr char kAllOpenSql[] = RDG_WORKLIST_SELECT
      "state IN (2, 3, 4) AND $2::integer[] IS NOT NULL AND " RDG_WORKLIST_FILTERS;
  static constexpr char kOpenSql[] = RDG_WORKLIST_SELECT
      "state IN (2, 3, 4) AND state = ANY($2::integer[]) AND " RDG_WORKLIST_FILTERS;
  static constexpr char kAnySql[] =
      RDG_WORKLIST_SELECT "state = ANY($2::integer[]) AND " RDG_WORKLIST_FILTERS;
#undef RDG_WORKLIST_SELECT
#undef RDG_WORKLIST_FILTERS
  const bool all_open = open_only && states.size() == 3 && OnlyOpenStates(states) &&
                        std::set<ExamState>(states.begin(), states.end()).size() == 3;
  const char* sql = all_open ? kAllOpenSql : open_only ? kOpenSql : kAnySql;
  auto r = pool_.Query(sql, {PTextArray(query.queues), PIntArray(states),
                             query.exam_types.empty() ? Param() : PTextArray(query.exam_types),
                             query.priorities.empty() ? Param() : PIntArray(query.priorities),
                             P(after->due), P(after->priority), P(after->seq), P(limit + 1),
                             query.patient.empty() ? Param() : P(query.patient)});
  if (!r.ok()) return r.status();
  WorklistPage page;
  int64_t last_seq = 0;
  for (int i = 0; i < r->rows(); ++i) {
    if (static_cast<int64_t>(page.entries.size()) == limit) {
      page.next_cursor = WorklistCursor(page.entries.back().exam, last_seq);
      break;
    }
    WorklistEntry entry;
    entry.exam = ReadExam(*r, i, &last_seq);
    constexpr int c = kExamColumnCount;  // the claim columns follow
    if (!r->IsNull(i, c) && r->Time(i, c + 3) > now) {
      entry.claim = ClaimRecord{entry.exam.exam_id, r->Text(i, c), r->Text(i, c + 1),
                                r->Time(i, c + 2), r->Time(i, c + 3)};
    }
    page.entries.push_back(std::move(entry));
  }
  return page;
}

absl::StatusOr<std::optional<ClaimRecord>> PgWorklistStore::GetLiveClaim(const std::string& exam_id,
                                                                         absl::Time now) {
  static constexpr char kGet[] =
      "SELECT holder_user, holder_institution, claimed_at, expires_at FROM claims "
      "WHERE exam_id = $1 AND expires_at > $2";
  auto r = pool_.Query(kGet, {P(exam_id), P(now)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ClaimRecord{exam_id, r->Text(0, 0), r->Text(0, 1), r->Time(0, 2), r->Time(0, 3)};
}

absl::StatusOr<ClaimRecord> PgWorklistStore::ClaimExam(const std::string& exam_id,
                                                       const std::string& user,
                                                       const std::string& institution,
                                                       absl::Time now, absl::Duration lease,
                                                       ClaimAction action) {
  return pool_.InTransaction(
      "READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<ClaimRecord> {
        auto exam = LockExam(conn, exam_id);
        if (!exam.ok()) return exam.status();
        if (!exam->has_value()) return NoExam(exam_id);
        static constexpr char kClaim[] =
            "SELECT holder_user, claimed_at, expires_at FROM claims WHERE exam_id = $1";
        auto c = conn.Exec(kClaim, {P(exam_id)});
        if (!c.ok()) return c.status();
        ClaimRecord claim{exam_id, user, institution, now, now + lease};
        if (c->rows() == 1 && c->Time(0, 2) > now) {
          if (c->Text(0, 0) != user) return ClaimedByAnother(exam_id, c->Text(0, 0), c->Time(0, 2));
          claim.claimed_at = c->Time(0, 1);  // the holder renews: same claim, later expiry
          static constexpr char kRenew[] = "UPDATE claims SET expires_at = $2 WHERE exam_id = $1";
          if (auto u = conn.Exec(kRenew, {P(exam_id), P(claim.expires_at)}); !u.ok()) {
            return u.status();
          }
          return claim;
        }
        if (c->rows() == 1) {  // an expired lease nobody swept yet: release it on the record
          if (auto s = AddEvent(conn, exam_id, ExamState::kReleased, c->Time(0, 2), "system",
                                absl::StrCat("lease of ", c->Text(0, 0), " expired"));
              !s.ok()) {
            return s;
          }
          static constexpr char kDelete[] = "DELETE FROM claims WHERE exam_id = $1";
          if (auto d = conn.Exec(kDelete, {P(exam_id)}); !d.ok()) return d.status();
        }
        if (auto s = MayClaim(exam_id, (*exam)->state, action); !s.ok()) return s;
        if (auto s = StartClaim(conn, claim, action == ClaimAction::kAmend); !s.ok()) return s;
        return claim;
      });
}

absl::Status PgWorklistStore::ReleaseClaim(const std::string& exam_id, const std::string& user,
                                           absl::Time now) {
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::Status {
    auto exam = LockExam(conn, exam_id);
    if (!exam.ok()) return exam.status();
    static constexpr char kHeld[] =
        "SELECT 1 FROM claims WHERE exam_id = $1 AND holder_user = $2 AND expires_at > $3";
    auto held = conn.Exec(kHeld, {P(exam_id), P(user), P(now)});
    if (!held.ok()) return held.status();
    if (held->rows() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("you hold no live claim on exam ", exam_id));
    }
    return EndClaim(conn, exam_id, now, user, "released");
  });
}

absl::StatusOr<int> PgWorklistStore::ExpireClaims(absl::Time now) {
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<int> {
    // The exams' rows first (as every change of a claim); one a reader is changing right now
    // is left to the next sweep.
    static constexpr char kLock[] =
        "SELECT e.exam_id FROM claims c JOIN exams e USING (exam_id) WHERE c.expires_at <= $1 "
        "ORDER BY e.exam_id FOR UPDATE OF e SKIP LOCKED";
    auto locked = conn.Exec(kLock, {P(now)});
    if (!locked.ok()) return locked.status();
    int expired = 0;
    for (int i = 0; i < locked->rows(); ++i) {
      const std::string exam_id = locked->Text(i, 0);
      // Read again under the lock: a renewal may have committed since the scan.
      static constexpr char kClaim[] =
          "SELECT holder_user, expires_at FROM claims WHERE exam_id = $1 AND expires_at <= $2";
      auto c = conn.Exec(kClaim, {P(exam_id), P(now)});
      if (!c.ok()) return c.status();
      if (c->rows() == 0) continue;
      if (auto s = EndClaim(conn, exam_id, c->Time(0, 1), "system",
                            absl::StrCat("lease of ", c->Text(0, 0), " expired"));
          !s.ok()) {
        return s;
      }
      ++expired;
    }
    return expired;
  });
}

absl::StatusOr<ExamRecord> PgWorklistStore::EscalateExam(const Escalation& esc, absl::Time now) {
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<ExamRecord> {
    auto locked = LockExam(conn, esc.exam_id);
    if (!locked.ok()) return locked.status();
    if (!locked->has_value()) return NoExam(esc.exam_id);
    ExamRecord exam = **locked;
    static constexpr char kHolder[] =
        "SELECT holder_user FROM claims WHERE exam_id = $1 AND expires_at > $2";
    auto holder = conn.Exec(kHolder, {P(esc.exam_id), P(now)});
    if (!holder.ok()) return holder.status();
    if (!Claimable(exam.state)) {
      return absl::FailedPreconditionError(
          absl::StrCat("exam ", esc.exam_id, " is ", Name(exam.state), " and cannot be escalated"));
    }
    if (!esc.require_claim && (exam.state != ExamState::kRouted || exam.claim_due_at > now)) {
      // The system escalates only what is still waiting past its claim target: a reader who
      // claimed it meanwhile keeps it.
      return absl::FailedPreconditionError(
          absl::StrCat("exam ", esc.exam_id, " was claimed or escalated meanwhile"));
    }
    if (esc.require_claim && (holder->rows() == 0 || holder->Text(0, 0) != esc.actor)) {
      return absl::FailedPreconditionError(
          absl::StrCat("claim exam ", esc.exam_id, " before escalating it"));
    }
    static constexpr char kDelete[] = "DELETE FROM claims WHERE exam_id = $1";
    if (auto d = conn.Exec(kDelete, {P(esc.exam_id)}); !d.ok()) return d.status();
    static constexpr char kMove[] =
        "UPDATE exams SET queue = $2, state = $3, claim_due_at = $4, updated_at = $5, "
        "escalated_by = $6, escalation_reason = $7 WHERE exam_id = $1";
    if (auto u = conn.Exec(kMove,
                           {P(esc.exam_id), P(esc.to_queue), P(int64_t{Number(ExamState::kRouted)}),
                            P(esc.claim_due_at), P(now), P(esc.actor), P(esc.reason)});
        !u.ok()) {
      return u.status();
    }
    if (auto s = AddEvent(conn, esc.exam_id, ExamState::kEscalated, now, esc.actor,
                          absl::StrCat(exam.queue, " -> ", esc.to_queue, ": ", esc.reason));
        !s.ok()) {
      return s;
    }
    if (auto s = MoveRunningStages(conn, esc.exam_id, esc.to_queue); !s.ok()) return s;
    exam.queue = esc.to_queue;
    exam.state = ExamState::kRouted;
    exam.claim_due_at = esc.claim_due_at;
    exam.updated_at = now;
    exam.escalated_by = esc.actor;
    exam.escalation_reason = esc.reason;
    return exam;
  });
}

absl::StatusOr<std::vector<ExamRecord>> PgWorklistStore::ListClaimOverdue(absl::Time now,
                                                                          int32_t limit) {
  static constexpr char kList[] =
      "SELECT " RDG_EXAM_COLUMNS
      " FROM exams WHERE state = $1 AND claim_due_at <= $2 ORDER BY claim_due_at LIMIT $3";
  auto r = pool_.Query(kList, {P(int64_t{Number(ExamState::kRouted)}), P(now),
                               P(int64_t{Number(std::clamp(limit, 1, 1000))})});
  if (!r.ok()) return r.status();
  return ReadExams(*r);
}

absl::Status PgWorklistStore::ClearClaimDue(const std::string& exam_id) {
  static constexpr char kClear[] = "UPDATE exams SET claim_due_at = $2 WHERE exam_id = $1";
  return pool_.Query(kClear, {P(exam_id), P(absl::InfiniteFuture())}).status();
}

absl::StatusOr<std::vector<QueueFigureRecord>> PgWorklistStore::ListQueueFigures(absl::Time now) {
  // The partial index of open exams by queue (exams_open_by_queue) holds every column read
  // here: the cost follows the open work, not the history.
  static constexpr char kFigures[] =
      "SELECT queue, count(*), count(*) FILTER (WHERE state IN (3, 4)), "
      "min(updated_at) FILTER (WHERE state = 2), count(*) FILTER (WHERE sla_due_at < $1) "
      "FROM exams WHERE state IN (2, 3, 4) GROUP BY queue ORDER BY queue";
  auto r = pool_.Query(kFigures, {P(now)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, [](const Result& res, int row) {
    QueueFigureRecord f{res.Text(row, 0), res.Int(row, 1), res.Int(row, 2), std::nullopt,
                        res.Int(row, 4)};
    if (!res.IsNull(row, 3)) f.oldest_waiting_since = res.Time(row, 3);
    return f;
  });
}

}  // namespace rdg::storage::pg
