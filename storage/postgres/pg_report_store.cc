#include "storage/postgres/pg_report_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/base/random.h"
#include "storage/index/report_rules.h"
#include "storage/postgres/pg_exam_changes.h"

#include "storage/index/columns.h"

namespace rdg::storage::pg {

ReportRecord ReadReport(const Result& r, int row) {
  ReportRecord p;
  p.seq = r.Int(row, 0);
  p.report_id = r.Text(row, 1);
  p.exam_id = r.Text(row, 2);
  p.origin_institution = r.Text(row, 3);
  p.version = static_cast<int32_t>(r.Int(row, 4));
  p.status = static_cast<ReportStatus>(r.Int(row, 5));
  p.critical = r.Bool(row, 6);
  p.reader_user = r.Text(row, 7);
  p.reader_institution = r.Text(row, 8);
  p.supersedes = r.Text(row, 9);
  p.content = r.Bytes(row, 10);
  p.canonical = r.Bytes(row, 11);
  p.signature_format = static_cast<SignatureFormat>(r.Int(row, 12));
  p.signature = r.Bytes(row, 13);
  p.signer_cert_pem = r.Text(row, 14);
  p.accepted_at = r.Time(row, 15);
  p.acknowledge_by = r.OptionalTime(row, 16);
  p.delivered_at = r.OptionalTime(row, 17);
  p.acknowledged_at = r.OptionalTime(row, 18);
  p.acknowledged_by = r.Text(row, 19);
  return p;
}

namespace {

std::string NewReportId() { return "rp-" + RandomHex(8); }

//! The exam (its row locked until the commit) with its live claim and its reports.
absl::StatusOr<ReportingState> LockReportingState(Connection& conn, const std::string& exam_id,
                                                  absl::Time now) {
  static constexpr char kLock[] =
      "SELECT state, origin_institution FROM exams WHERE exam_id = $1 FOR UPDATE";
  auto e = conn.Exec(kLock, {P(exam_id)});
  if (!e.ok()) return e.status();
  if (e->rows() == 0) return absl::NotFoundError(absl::StrCat("no exam ", exam_id));
  ReportingState s;
  s.state = static_cast<ExamState>(e->Int(0, 0));
  s.origin_institution = e->Text(0, 1);
  static constexpr char kRest[] =
      "SELECT (SELECT holder_user FROM claims WHERE exam_id = $1 AND expires_at > $2), "
      "(SELECT holder_institution FROM claims WHERE exam_id = $1 AND expires_at > $2), "
      "(SELECT report_id FROM reports WHERE exam_id = $1 AND status <> $3 "
      " ORDER BY version DESC LIMIT 1), "
      "(SELECT COALESCE(MAX(version), 0) FROM reports WHERE exam_id = $1), "
      "(SELECT reader_user || chr(31) || reader_institution FROM reports "
      " WHERE exam_id = $1 AND status = $4 ORDER BY version LIMIT 1)";
  auto r = conn.Exec(kRest, {P(exam_id), P(now), P(int64_t{Number(ReportStatus::kPreliminary)}),
                             P(int64_t{Number(ReportStatus::kFinal)})});
  if (!r.ok()) return r.status();
  s.holder = r->Text(0, 0);
  s.holder_institution = r->Text(0, 1);
  s.latest_signed = r->Text(0, 2);
  s.max_version = static_cast<int32_t>(r->Int(0, 3));
  s.final_author = r->Text(0, 4);
  return s;
}

absl::Status InsertReport(Connection& conn, ReportRecord& report) {
  static constexpr char kInsert[] =
      "WITH head AS (UPDATE feed_heads SET seq = seq + 1 WHERE name = 'reports' RETURNING seq) "
      "INSERT INTO reports (seq, report_id, exam_id, origin_institution, version, status, "
      "critical, reader_user, reader_institution, supersedes, content, canonical, "
      "signature_format, signature, signer_cert, accepted_at, acknowledge_by) "
      "VALUES ((SELECT seq FROM head), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
      "$14, $15, $16) RETURNING seq";
  auto r = conn.Exec(kInsert,
                     {P(report.report_id), P(report.exam_id), P(report.origin_institution),
                      P(int64_t{Number(report.version)}), P(int64_t{Number(report.status)}),
                      PBool(report.critical), P(report.reader_user), P(report.reader_institution),
                      P(report.supersedes), PBytes(report.content), PBytes(report.canonical),
                      P(int64_t{Number(report.signature_format)}), PBytes(report.signature),
                      P(report.signer_cert_pem), P(report.accepted_at),
                      report.acknowledge_by ? P(*report.acknowledge_by) : Param()});
  if (!r.ok()) return r.status();
  if (r->rows() != 1) return absl::InternalError("postgres: the report feed's counter is missing");
  report.seq = r->Int(0, 0);
  return absl::OkStatus();
}

//! What a new version changes: the exam's state, its claim (a FINAL ends it), its events and
//! SLA stages.
absl::Status AfterReport(Connection& conn, const ReportRecord& report, absl::Time now) {
  const ExamState next = StateAfter(report.status);
  static constexpr char kState[] =
      "UPDATE exams SET state = $2, updated_at = $3 WHERE exam_id = $1";
  if (auto u = conn.Exec(kState, {P(report.exam_id), P(int64_t{Number(next)}), P(now)}); !u.ok()) {
    return u.status();
  }
  if (next == ExamState::kFinal) {  // the reading is done: the lease ends with it
    static constexpr char kDelete[] = "DELETE FROM claims WHERE exam_id = $1";
    if (auto d = conn.Exec(kDelete, {P(report.exam_id)}); !d.ok()) return d.status();
  }
  if (auto s = AddEvent(conn, report.exam_id, next, now, report.reader_user,
                        absl::StrCat(Name(report.status), " ", report.report_id, " v",
                                     report.version, report.critical ? " critical" : ""));
      !s.ok()) {
    return s;
  }
  if (report.status == ReportStatus::kAmended && report.acknowledge_by) {
    // A critical addendum needs its own acknowledgement, like a critical FINAL.
    return RestartStage(conn, report.exam_id, Stage::kCriticalAcknowledgement, now,
                        *report.acknowledge_by);
  }
  if (report.status != ReportStatus::kFinal) return absl::OkStatus();
  // The reading is done; the clinic's turn.
  if (auto s =
          EndStage(conn, report.exam_id, Stage::kReceivedToFinal, now, report.reader_institution);
      !s.ok()) {
    return s;
  }
  if (auto s = StartStage(conn, report.exam_id, Stage::kFinalToAcknowledged, now,
                          report.acknowledge_due);
      !s.ok()) {
    return s;
  }
  if (!report.acknowledge_by) return absl::OkStatus();
  return StartStage(conn, report.exam_id, Stage::kCriticalAcknowledgement, now,
                    *report.acknowledge_by);
}

}  // namespace

absl::StatusOr<ReportRecord> PgReportStore::AddReport(ReportRecord report, absl::Time now) {
  // Each attempt starts from the caller's record (a retried transaction assigns again).
  const ReportRecord requested = std::move(report);
  return pool_.InTransaction(
      "READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<ReportRecord> {
        ReportRecord r = requested;
        auto exam = LockReportingState(conn, r.exam_id, now);
        if (!exam.ok()) return exam.status();
        r.origin_institution = exam->origin_institution;
        r.version = exam->max_version + 1;
        if (auto s = MayReport(r, *exam); !s.ok()) return s;
        r.report_id = NewReportId();
        r.accepted_at = now;
        if (auto s = InsertReport(conn, r); !s.ok()) return s;
        if (auto s = AfterReport(conn, r, now); !s.ok()) return s;
        if (r.status != ReportStatus::kPreliminary) {
          // Delivered at the commit to every gateway's listener: their report watches wake.
          static constexpr char kNotify[] = "SELECT pg_notify('" RDG_REPORTS_CHANNEL "', $1)";
          if (auto n = conn.Exec(kNotify, {P(r.origin_institution)}); !n.ok()) return n.status();
        }
        return r;
      });
}

absl::StatusOr<std::vector<ReportRecord>> PgReportStore::ListReports(const std::string& exam_id) {
  static constexpr char kList[] =
      "SELECT " RDG_REPORT_COLUMNS " FROM reports WHERE exam_id = $1 ORDER BY version";
  auto r = pool_.Query(kList, {P(exam_id)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadReport);
}

absl::StatusOr<std::vector<ReportRecord>> PgReportStore::ReportFeed(const std::string& institution,
                                                                    int64_t after_seq,
                                                                    int32_t limit) {
  static constexpr char kFeed[] =
      "SELECT " RDG_REPORT_COLUMNS
      " FROM reports WHERE origin_institution = $1 AND seq > $2 AND status <> $3 "
      "ORDER BY seq LIMIT $4";
  auto r = pool_.Query(
      kFeed, {P(institution), P(after_seq), P(int64_t{Number(ReportStatus::kPreliminary)}),
              P(int64_t{std::clamp(limit, 1, 1000)})});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadReport);
}

absl::Status PgReportStore::MarkDelivered(const std::vector<std::string>& report_ids,
                                          absl::Time now) {
  if (report_ids.empty()) return absl::OkStatus();
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::Status {
    // Exams before reports, in one order, as everywhere else (pg_exam_changes.h): an
    // acknowledgement or addendum holding an exam's row while it waits for the report's would
    // otherwise deadlock with this.
    static constexpr char kLockExams[] =
        "SELECT exam_id FROM exams WHERE exam_id IN (SELECT exam_id FROM reports "
        "WHERE report_id = ANY($1::text[]) AND delivered_at IS NULL) ORDER BY exam_id FOR UPDATE";
    if (auto locked = conn.Exec(kLockExams, {PTextArray(report_ids)}); !locked.ok()) {
      return locked.status();
    }
    // First delivery only: a report another gateway marked meanwhile is skipped.
    static constexpr char kMark[] =
        "UPDATE reports SET delivered_at = $2 WHERE report_id = $1 AND delivered_at IS NULL "
        "RETURNING exam_id";
    for (const std::string& id : report_ids) {
      auto u = conn.Exec(kMark, {P(id), P(now)});
      if (!u.ok()) return u.status();
      if (u->rows() == 0) continue;
      if (auto s = AddEvent(conn, u->Text(0, 0), ExamState::kDelivered, now, "system", id);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<ReportRecord> PgReportStore::AcknowledgeReport(const std::string& report_id,
                                                              const std::string& institution,
                                                              const std::string& user,
                                                              absl::Time now) {
  return pool_.InTransaction(
      "READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<ReportRecord> {
        static constexpr char kFind[] =
            "SELECT " RDG_REPORT_COLUMNS
            " FROM reports WHERE report_id = $1 AND origin_institution = $2 AND status <> $3";
        auto found = conn.Exec(
            kFind, {P(report_id), P(institution), P(int64_t{Number(ReportStatus::kPreliminary)})});
        if (!found.ok()) return found.status();
        if (found->rows() == 0) {
          return absl::NotFoundError(absl::StrCat("no report ", report_id, " for ", institution));
        }
        const std::string exam_id = found->Text(0, 2);
        // The exam's row orders this against an addendum being added and a second
        // acknowledgement; the report is read again under it.
        if (auto e = LockExam(conn, exam_id); !e.ok()) return e.status();
        static constexpr char kAgain[] =
            "SELECT " RDG_REPORT_COLUMNS " FROM reports WHERE report_id = $1";
        auto again = conn.Exec(kAgain, {P(report_id)});
        if (!again.ok()) return again.status();
        ReportRecord r = ReadReport(*again, 0);
        if (r.acknowledged_at) return r;  // acknowledging twice changes nothing
        static constexpr char kAck[] =
            "UPDATE reports SET acknowledged_at = $2, acknowledged_by = $3, "
            "delivered_at = COALESCE(delivered_at, $2) WHERE report_id = $1";
        if (auto u = conn.Exec(kAck, {P(report_id), P(now), P(user)}); !u.ok()) return u.status();
        if (!r.delivered_at) {  // acknowledged before any delivery was recorded: it was delivered
          if (auto s = AddEvent(conn, exam_id, ExamState::kDelivered, now, "system", report_id);
              !s.ok()) {
            return s;
          }
        }
        if (auto s = AddEvent(conn, exam_id, ExamState::kAcknowledged, now, user, report_id);
            !s.ok()) {
          return s;
        }
        if (auto s =
                EndStage(conn, exam_id, Stage::kFinalToAcknowledged, now, r.reader_institution);
            !s.ok()) {
          return s;
        }
        // The critical clock stops when the clinic acknowledges the latest signed version: a
        // critical addendum is not acknowledged by acknowledging the report it amends.
        static constexpr char kLatest[] =
            "SELECT MAX(version) FROM reports WHERE exam_id = $1 AND status <> $2";
        auto latest =
            conn.Exec(kLatest, {P(exam_id), P(int64_t{Number(ReportStatus::kPreliminary)})});
        if (!latest.ok()) return latest.status();
        if (!latest->IsNull(0, 0) && latest->Int(0, 0) == r.version) {
          if (auto s = EndStage(conn, exam_id, Stage::kCriticalAcknowledgement, now,
                                r.reader_institution);
              !s.ok()) {
            return s;
          }
        }
        r.acknowledged_at = now;
        r.acknowledged_by = user;
        if (!r.delivered_at) r.delivered_at = now;
        return r;
      });
}

}  // namespace rdg::storage::pg
