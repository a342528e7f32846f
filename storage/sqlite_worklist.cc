// SqliteIndexStore: reading worklists and claims. Claims are serialised by the single writer
// connection (BEGIN IMMEDIATE), so at most one live claim per exam holds under any concurrency.
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "storage/base/status_macros.h"
#include "storage/index/claim_rules.h"
#include "storage/index/worklist_paging.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {
namespace {

using sqlite_internal::Connection;
using sqlite_internal::InWriteTransaction;
using sqlite_internal::Stmt;

using sqlite_internal::JsonArray;

template <typename Enum>
std::string JsonIntArray(const std::vector<Enum>& values) {
  std::vector<std::string> parts;
  for (Enum v : values) parts.push_back(std::to_string(static_cast<int>(v)));
  return "[" + absl::StrJoin(parts, ",") + "]";
}

// Migration 0006's partial index and the worklist query spell the open states as numbers.
static_assert(Number(ExamState::kRouted) == 2 && Number(ExamState::kClaimed) == 3 &&
                  Number(ExamState::kPreliminary) == 4,
              "exams_open_worklist (0006_open_worklist_index.sql) hard-codes the open states");

}  // namespace

absl::StatusOr<WorklistPage> SqliteIndexStore::ListWorklist(const WorklistQuery& query,
                                                            absl::Time now) {
  RDG_ASSIGN_OR_RETURN(const WorklistKey after, ParseWorklistCursor(query.after));
  const std::vector<ExamState> states = WorklistStates(query);
  const int64_t limit = std::clamp<int64_t>(query.limit, 1, 1000);
  // Open states only (the usual case): walk the partial index of open exams in worklist order
  // and stop after a page. Other states (e.g. FINAL) take the general path.
  const bool open_only = OnlyOpenStates(states);
#define RDG_WORKLIST_SELECT                                    \
  "SELECT " RDG_EXAM_COLUMNS                                   \
  ", holder_user, holder_institution, claimed_at, expires_at " \
  "FROM exams LEFT JOIN claims USING (exam_id) WHERE "
#define RDG_WORKLIST_FILTERS                                                                  \
  "queue IN (SELECT value FROM json_each(?1)) "                                               \
  "AND state IN (SELECT value FROM json_each(?2)) "                                           \
  "AND (?3 IS NULL OR exam_type IN (SELECT value FROM json_each(?3))) "                       \
  "AND (?4 IS NULL OR priority IN (SELECT value FROM json_each(?4))) "                        \
  "AND (?9 IS NULL OR patient_id = ?9 OR instr(lower(patient_name), lower(?9)) > 0 "          \
  "     OR instr(lower(replace(replace(patient_name, '^', ''), '=', '')), lower(?9)) > 0 "    \
  "     OR instr(lower(replace(replace(patient_name, '^', ' '), '=', ' ')), lower(?9)) > 0) " \
  "AND (sla_due_at, priority, seq) > (?5, ?6, ?7) "                                           \
  "ORDER BY sla_due_at, priority, seq LIMIT ?8"
  static constexpr char kOpenSql[] =
      RDG_WORKLIST_SELECT "state IN (2, 3, 4) AND " RDG_WORKLIST_FILTERS;
  static constexpr char kAnySql[] = RDG_WORKLIST_SELECT RDG_WORKLIST_FILTERS;
#undef RDG_WORKLIST_SELECT
#undef RDG_WORKLIST_FILTERS
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare(open_only ? kOpenSql : kAnySql));
  q->Bind(1, JsonArray(query.queues)).Bind(2, JsonIntArray(states));
  if (!query.exam_types.empty()) q->Bind(3, JsonArray(query.exam_types));
  if (!query.priorities.empty()) q->Bind(4, JsonIntArray(query.priorities));
  q->Bind(5, after.due).Bind(6, after.priority).Bind(7, after.seq).Bind(8, limit + 1);
  if (!query.patient.empty()) q->Bind(9, query.patient);
  WorklistPage page;
  int64_t last_seq = 0;
  for (;;) {
    RDG_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) break;
    if (static_cast<int64_t>(page.entries.size()) == limit) {
      page.next_cursor = WorklistCursor(page.entries.back().exam, last_seq);
      break;
    }
    WorklistEntry entry;
    entry.exam = sqlite_internal::ReadExam(*q, &last_seq);
    constexpr int c = kExamColumnCount;  // the claim columns follow
    if (!q->Text(c).empty() && q->Time(c + 3) > now) {
      entry.claim = ClaimRecord{entry.exam.exam_id, q->Text(c), q->Text(c + 1), q->Time(c + 2),
                                q->Time(c + 3)};
    }
    page.entries.push_back(std::move(entry));
  }
  return page;
}

absl::StatusOr<std::optional<ClaimRecord>> SqliteIndexStore::GetLiveClaim(
    const std::string& exam_id, absl::Time now) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare("SELECT holder_user, holder_institution, claimed_at, expires_at FROM claims "
                    "WHERE exam_id = ? AND expires_at > ?"));
  q->Bind(1, exam_id).Bind(2, now);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::nullopt;
  return ClaimRecord{exam_id, q->Text(0), q->Text(1), q->Time(2), q->Time(3)};
}

absl::Status SqliteIndexStore::StartClaim(const ClaimRecord& claim, bool amend) {
  const std::string& exam_id = claim.exam_id;
  const std::string& user = claim.holder_user;
  const std::string& institution = claim.holder_institution;
  const absl::Time now = claim.claimed_at;
  RDG_ASSIGN_OR_RETURN(
      auto ins,
      writer_->Prepare(
          "INSERT INTO claims (exam_id, holder_user, holder_institution, claimed_at, expires_at) "
          "VALUES (?, ?, ?, ?, ?)"));
  ins->Bind(1, exam_id).Bind(2, user).Bind(3, institution).Bind(4, now).Bind(5, claim.expires_at);
  RDG_RETURN_IF_ERROR(ins->Run());
  if (amend) {  // the exam stays FINAL: its report stands until an addendum is signed
    RDG_RETURN_IF_ERROR(
        AddEvent(exam_id, ExamState::kClaimed, now, user,
                 absl::StrCat("for amendment, lease ", absl::ToInt64Minutes(claim.expires_at - now),
                              " min")));
    return absl::OkStatus();
  }
  RDG_ASSIGN_OR_RETURN(
      auto u, writer_->Prepare("UPDATE exams SET state = ?, updated_at = ? WHERE exam_id = ?"));
  u->Bind(1, int64_t{Number(ExamState::kClaimed)}).Bind(2, now).Bind(3, exam_id);
  RDG_RETURN_IF_ERROR(u->Run());
  // The lease as a length: the event's time is shown to people in their zone, the length
  // needs none (a clock time written here would be UTC in every zone's history).
  RDG_RETURN_IF_ERROR(
      AddEvent(exam_id, ExamState::kClaimed, now, user,
               absl::StrCat("lease ", absl::ToInt64Minutes(claim.expires_at - now), " min")));
  RDG_RETURN_IF_ERROR(EndStage(exam_id, Stage::kReceivedToClaimed, now, institution));
  return absl::OkStatus();
}

absl::StatusOr<ClaimRecord> SqliteIndexStore::ClaimExam(const std::string& exam_id,
                                                        const std::string& user,
                                                        const std::string& institution,
                                                        absl::Time now, absl::Duration lease,
                                                        ClaimAction action) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::StatusOr<ClaimRecord> {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(auto e, writer_->Prepare("SELECT state FROM exams WHERE exam_id = ?"));
    e->Bind(1, exam_id);
    RDG_ASSIGN_OR_RETURN(bool exists, e->Step());
    if (!exists) return absl::NotFoundError(absl::StrCat("no exam ", exam_id));
    const auto state = static_cast<ExamState>(e->Int(0));
    e.reset();

    RDG_ASSIGN_OR_RETURN(
        auto c, writer_->Prepare(
                    "SELECT holder_user, claimed_at, expires_at FROM claims WHERE exam_id = ?"));
    c->Bind(1, exam_id);
    RDG_ASSIGN_OR_RETURN(bool claimed, c->Step());
    ClaimRecord claim{exam_id, user, institution, now, now + lease};
    if (claimed && c->Time(2) > now) {
      if (c->Text(0) != user) {
        return ClaimedByAnother(exam_id, c->Text(0), c->Time(2));
      }
      claim.claimed_at = c->Time(1);  // the holder renews: same claim, later expiry
      c.reset();
      RDG_ASSIGN_OR_RETURN(auto u,
                           writer_->Prepare("UPDATE claims SET expires_at = ? WHERE exam_id = ?"));
      u->Bind(1, claim.expires_at).Bind(2, exam_id);
      RDG_RETURN_IF_ERROR(u->Run());
      return claim;
    }
    if (claimed) {  // an expired lease nobody swept yet: release it on the record first
      const std::string previous = c->Text(0);
      const absl::Time expired_at = c->Time(2);
      c.reset();
      RDG_RETURN_IF_ERROR(AddEvent(exam_id, ExamState::kReleased, expired_at, "system",
                                   absl::StrCat("lease of ", previous, " expired")));
      RDG_ASSIGN_OR_RETURN(auto d, writer_->Prepare("DELETE FROM claims WHERE exam_id = ?"));
      d->Bind(1, exam_id);
      RDG_RETURN_IF_ERROR(d->Run());
    }
    RDG_RETURN_IF_ERROR(MayClaim(exam_id, state, action));
    RDG_RETURN_IF_ERROR(StartClaim(claim, action == ClaimAction::kAmend));
    return claim;
  });
}

absl::Status SqliteIndexStore::EndClaim(const std::string& exam_id, absl::Time at,
                                        const std::string& actor, const std::string& detail) {
  RDG_ASSIGN_OR_RETURN(auto d, writer_->Prepare("DELETE FROM claims WHERE exam_id = ?"));
  d->Bind(1, exam_id);
  RDG_RETURN_IF_ERROR(d->Run());
  d.reset();
  RDG_ASSIGN_OR_RETURN(
      auto u, writer_->Prepare(
                  "UPDATE exams SET state = ?, updated_at = ? WHERE exam_id = ? AND state = ?"));
  u->Bind(1, int64_t{Number(ExamState::kRouted)})
      .Bind(2, at)
      .Bind(3, exam_id)
      .Bind(4, int64_t{Number(ExamState::kClaimed)});
  RDG_RETURN_IF_ERROR(u->Run());
  return AddEvent(exam_id, ExamState::kReleased, at, actor, detail);
}

absl::Status SqliteIndexStore::ReleaseClaim(const std::string& exam_id, const std::string& user,
                                            absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::Status {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(
        auto c,
        writer_->Prepare(
            "SELECT 1 FROM claims WHERE exam_id = ? AND holder_user = ? AND expires_at > ?"));
    c->Bind(1, exam_id).Bind(2, user).Bind(3, now);
    RDG_ASSIGN_OR_RETURN(bool held, c->Step());
    c.reset();
    if (!held) {
      return absl::FailedPreconditionError(
          absl::StrCat("you hold no live claim on exam ", exam_id));
    }
    return EndClaim(exam_id, now, user, "released");
  });
}

absl::StatusOr<int> SqliteIndexStore::ExpireClaims(absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::StatusOr<int> {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    std::vector<std::pair<std::string, std::string>> expired;
    std::vector<absl::Time> at;
    {
      RDG_ASSIGN_OR_RETURN(
          auto q, writer_->Prepare(
                      "SELECT exam_id, holder_user, expires_at FROM claims WHERE expires_at <= ?"));
      q->Bind(1, now);
      for (;;) {
        RDG_ASSIGN_OR_RETURN(bool row, q->Step());
        if (!row) break;
        expired.emplace_back(q->Text(0), q->Text(1));
        at.push_back(q->Time(2));
      }
    }
    for (size_t i = 0; i < expired.size(); ++i) {
      RDG_RETURN_IF_ERROR(EndClaim(expired[i].first, at[i], "system",
                                   absl::StrCat("lease of ", expired[i].second, " expired")));
    }
    return static_cast<int>(expired.size());
  });
}

absl::StatusOr<ExamRecord> SqliteIndexStore::EscalateExam(const Escalation& esc, absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::StatusOr<ExamRecord> {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(
        auto e, writer_->Prepare("SELECT " RDG_EXAM_COLUMNS ", (SELECT holder_user FROM claims c "
                                 "WHERE c.exam_id = exams.exam_id AND c.expires_at > ?2) FROM "
                                 "exams WHERE exam_id = ?1"));
    e->Bind(1, esc.exam_id).Bind(2, now);
    RDG_ASSIGN_OR_RETURN(bool exists, e->Step());
    if (!exists) return absl::NotFoundError(absl::StrCat("no exam ", esc.exam_id));
    ExamRecord exam = sqlite_internal::ReadExam(*e, nullptr);
    const std::string holder = e->Text(kExamColumnCount);
    e.reset();
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
    if (esc.require_claim && holder != esc.actor) {
      return absl::FailedPreconditionError(
          absl::StrCat("claim exam ", esc.exam_id, " before escalating it"));
    }
    RDG_ASSIGN_OR_RETURN(auto d, writer_->Prepare("DELETE FROM claims WHERE exam_id = ?"));
    d->Bind(1, esc.exam_id);
    RDG_RETURN_IF_ERROR(d->Run());
    d.reset();
    RDG_ASSIGN_OR_RETURN(
        auto u,
        writer_->Prepare("UPDATE exams SET queue = ?, state = ?, claim_due_at = ?, updated_at = ?, "
                         "escalated_by = ?, escalation_reason = ? WHERE exam_id = ?"));
    u->Bind(1, esc.to_queue)
        .Bind(2, int64_t{Number(ExamState::kRouted)})
        .Bind(3, sqlite_internal::DueMicros(esc.claim_due_at))
        .Bind(4, now)
        .Bind(5, esc.actor)
        .Bind(6, esc.reason)
        .Bind(7, esc.exam_id);
    RDG_RETURN_IF_ERROR(u->Run());
    u.reset();
    RDG_RETURN_IF_ERROR(AddEvent(esc.exam_id, ExamState::kEscalated, now, esc.actor,
                                 absl::StrCat(exam.queue, " -> ", esc.to_queue, ": ", esc.reason)));
    RDG_RETURN_IF_ERROR(MoveRunningStages(esc.exam_id, esc.to_queue));
    exam.queue = esc.to_queue;
    exam.state = ExamState::kRouted;
    exam.claim_due_at = esc.claim_due_at;
    exam.escalated_by = esc.actor;
    exam.escalation_reason = esc.reason;
    return exam;
  });
}

absl::StatusOr<std::vector<ExamRecord>> SqliteIndexStore::ListClaimOverdue(absl::Time now,
                                                                           int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare("SELECT " RDG_EXAM_COLUMNS
                                             " FROM exams WHERE state = ? AND claim_due_at <= ? "
                                             "ORDER BY claim_due_at LIMIT ?"));
  q->Bind(1, int64_t{Number(ExamState::kRouted)})
      .Bind(2, now)
      .Bind(3, int64_t{Number(std::clamp(limit, 1, 1000))});
  return sqlite_internal::CollectRows(
      *q, [](const Stmt& s) { return sqlite_internal::ReadExam(s, nullptr); });
}

absl::Status SqliteIndexStore::ClearClaimDue(const std::string& exam_id) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(auto u,
                       writer_->Prepare("UPDATE exams SET claim_due_at = ? WHERE exam_id = ?"));
  u->Bind(1, std::numeric_limits<int64_t>::max()).Bind(2, exam_id);
  return u->Run();
}

absl::StatusOr<std::vector<ExamRecord>> SqliteIndexStore::FindPriors(const ExamRecord& exam,
                                                                     int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE exam_id != ?1 AND ("
          // Written so that the partial index exams_by_national_id and exams_by_origin_patient
          // serve them (a MULTI-INDEX OR, no table scan). An unstated issuer on either side is no
          // disagreement here; the caller compares issuers and demographics.
          "(patient_national_id != '' AND patient_national_id = ?2) OR "
          "(?4 != '' AND origin_institution = ?3 AND patient_id = ?4 AND "
          " (patient_id_issuer = ?6 OR patient_id_issuer = '' OR ?6 = ''))) "
          "ORDER BY received_at DESC LIMIT ?5"));
  q->Bind(1, exam.exam_id)
      .Bind(2, exam.patient.national_id)
      .Bind(3, exam.origin_institution)
      .Bind(4, exam.patient.patient_id)
      .Bind(5, int64_t{std::clamp(limit, 1, 1000)})
      .Bind(6, exam.patient.id_issuer);
  return sqlite_internal::CollectRows(
      *q, [](const Stmt& s) { return sqlite_internal::ReadExam(s, nullptr); });
}

absl::StatusOr<std::vector<ExamRecord>> SqliteIndexStore::FindLabOrders(
    const std::string& institution, const std::string& accession, int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare(
                  "SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE origin_institution = ? AND "
                  "accession_number = ? AND exam_type = 'LAB' ORDER BY received_at DESC LIMIT ?"));
  q->Bind(1, institution).Bind(2, accession).Bind(3, int64_t{std::clamp(limit, 1, 1000)});
  return sqlite_internal::CollectRows(
      *q, [](const Stmt& s) { return sqlite_internal::ReadExam(s, nullptr); });
}

}  // namespace rdg::storage
