// SqliteIndexStore: report versions, the origin clinic's report feed, delivery and
// acknowledgement. Report rows are only ever inserted; delivery and acknowledgement fill in
// their own columns once.

#include "storage/base/random.h"
#include "storage/base/status_macros.h"
#include "storage/index/columns.h"
#include "storage/index/report_rules.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {
namespace {

using sqlite_internal::InWriteTransaction;
using sqlite_internal::Stmt;

std::optional<absl::Time> OptionalTime(const Stmt& s, int col) {
  if (s.IsNull(col)) return std::nullopt;
  return s.Time(col);
}

ReportRecord ReadReport(const Stmt& s) {
  ReportRecord r;
  r.seq = s.Int(0);
  r.report_id = s.Text(1);
  r.exam_id = s.Text(2);
  r.origin_institution = s.Text(3);
  r.version = static_cast<int32_t>(s.Int(4));
  r.status = static_cast<ReportStatus>(s.Int(5));
  r.critical = s.Int(6) != 0;
  r.reader_user = s.Text(7);
  r.reader_institution = s.Text(8);
  r.supersedes = s.Text(9);
  r.content = s.Blob(10);
  r.canonical = s.Blob(11);
  r.signature_format = static_cast<SignatureFormat>(s.Int(12));
  r.signature = s.Blob(13);
  r.signer_cert_pem = s.Text(14);
  r.accepted_at = s.Time(15);
  r.acknowledge_by = OptionalTime(s, 16);
  r.delivered_at = OptionalTime(s, 17);
  r.acknowledged_at = OptionalTime(s, 18);
  r.acknowledged_by = s.Text(19);
  return r;
}

std::string NewReportId() { return "rp-" + RandomHex(8); }

absl::StatusOr<ReportingState> LoadReportingState(sqlite_db::Connection& db,
                                                  const std::string& exam_id, absl::Time now) {
  RDG_ASSIGN_OR_RETURN(
      auto e,
      db.Prepare(
          "SELECT state, origin_institution, "
          "(SELECT holder_user FROM claims c WHERE c.exam_id = exams.exam_id AND c.expires_at > "
          "?2), "
          "(SELECT report_id FROM reports r WHERE r.exam_id = exams.exam_id AND r.status != ?3 "
          " ORDER BY version DESC LIMIT 1), "
          "(SELECT COALESCE(MAX(version), 0) FROM reports r WHERE r.exam_id = exams.exam_id), "
          "(SELECT holder_institution FROM claims c WHERE c.exam_id = exams.exam_id "
          " AND c.expires_at > ?2), "
          "(SELECT reader_user || char(31) || reader_institution FROM reports r "
          " WHERE r.exam_id = exams.exam_id AND r.status = ?4 ORDER BY version LIMIT 1) "
          "FROM exams WHERE exam_id = ?1"));
  e->Bind(1, exam_id)
      .Bind(2, now)
      .Bind(3, int64_t{Number(ReportStatus::kPreliminary)})
      .Bind(4, int64_t{Number(ReportStatus::kFinal)});
  RDG_ASSIGN_OR_RETURN(bool exists, e->Step());
  if (!exists) return absl::NotFoundError(absl::StrCat("no exam ", exam_id));
  ReportingState r;
  r.state = static_cast<ExamState>(e->Int(0));
  r.origin_institution = e->Text(1);
  r.holder = e->Text(2);
  r.latest_signed = e->Text(3);
  r.max_version = static_cast<int32_t>(e->Int(4));
  r.holder_institution = e->Text(5);
  r.final_author = e->Text(6);
  return r;
}

absl::Status InsertReport(sqlite_db::Connection& db, ReportRecord& report, absl::Time now) {
  RDG_ASSIGN_OR_RETURN(
      auto ins,
      db.Prepare(
          "INSERT INTO reports (report_id, exam_id, origin_institution, version, status, "
          "critical, "
          "reader_user, reader_institution, supersedes, content, canonical, signature_format, "
          "signature, signer_cert, accepted_at, acknowledge_by) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  ins->Bind(1, report.report_id)
      .Bind(2, report.exam_id)
      .Bind(3, report.origin_institution)
      .Bind(4, int64_t{report.version})
      .Bind(5, int64_t{Number(report.status)})
      .Bind(6, int64_t{report.critical})
      .Bind(7, report.reader_user)
      .Bind(8, report.reader_institution)
      .Bind(9, report.supersedes)
      .BindBlob(10, report.content)
      .BindBlob(11, report.canonical)
      .Bind(12, int64_t{Number(report.signature_format)})
      .BindBlob(13, report.signature)
      .Bind(14, report.signer_cert_pem)
      .Bind(15, now);
  if (report.acknowledge_by) ins->Bind(16, *report.acknowledge_by);
  RDG_RETURN_IF_ERROR(ins->Run());
  report.seq = db.LastInsertRowid();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ReportRecord> SqliteIndexStore::AddReport(ReportRecord report, absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::StatusOr<ReportRecord> {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(ReportingState exam, LoadReportingState(*writer_, report.exam_id, now));
    report.origin_institution = exam.origin_institution;
    report.version = exam.max_version + 1;
    RDG_RETURN_IF_ERROR(MayReport(report, exam));
    report.report_id = NewReportId();
    report.accepted_at = now;
    RDG_RETURN_IF_ERROR(InsertReport(*writer_, report, now));
    RDG_RETURN_IF_ERROR(AfterReport(report, now));
    return report;
  });
}

absl::Status SqliteIndexStore::AfterReport(const ReportRecord& report, absl::Time now) {
  const ExamState next = StateAfter(report.status);
  RDG_ASSIGN_OR_RETURN(
      auto u, writer_->Prepare("UPDATE exams SET state = ?, updated_at = ? WHERE exam_id = ?"));
  u->Bind(1, int64_t{Number(next)}).Bind(2, now).Bind(3, report.exam_id);
  RDG_RETURN_IF_ERROR(u->Run());
  u.reset();
  if (next == ExamState::kFinal) {  // the reading is done: the lease ends with it
    RDG_ASSIGN_OR_RETURN(auto d, writer_->Prepare("DELETE FROM claims WHERE exam_id = ?"));
    d->Bind(1, report.exam_id);
    RDG_RETURN_IF_ERROR(d->Run());
  }
  RDG_RETURN_IF_ERROR(AddEvent(report.exam_id, next, now, report.reader_user,
                               absl::StrCat(Name(report.status), " ", report.report_id, " v",
                                            report.version, report.critical ? " critical" : "")));
  if (report.status == ReportStatus::kAmended && report.acknowledge_by) {
    // A critical addendum needs its own acknowledgement, like a critical FINAL.
    RDG_RETURN_IF_ERROR(
        RestartStage(report.exam_id, Stage::kCriticalAcknowledgement, now, *report.acknowledge_by));
  }
  if (report.status == ReportStatus::kFinal) {  // the reading is done; the clinic's turn
    RDG_RETURN_IF_ERROR(
        EndStage(report.exam_id, Stage::kReceivedToFinal, now, report.reader_institution));
    RDG_RETURN_IF_ERROR(
        StartStage(report.exam_id, Stage::kFinalToAcknowledged, now, report.acknowledge_due));
    if (report.acknowledge_by) {
      RDG_RETURN_IF_ERROR(
          StartStage(report.exam_id, Stage::kCriticalAcknowledgement, now, *report.acknowledge_by));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReportRecord>> SqliteIndexStore::ListReports(
    const std::string& exam_id) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare("SELECT " RDG_REPORT_COLUMNS
                                             " FROM reports WHERE exam_id = ? ORDER BY version"));
  q->Bind(1, exam_id);
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadReport(s); });
}

absl::StatusOr<std::vector<ReportRecord>> SqliteIndexStore::ReportFeed(
    const std::string& institution, int64_t after_seq, int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q,
                       conn->Prepare("SELECT " RDG_REPORT_COLUMNS
                                     " FROM reports WHERE origin_institution = ? AND seq > ? "
                                     "AND status != ? ORDER BY seq LIMIT ?"));
  q->Bind(1, institution)
      .Bind(2, after_seq)
      .Bind(3, int64_t{Number(ReportStatus::kPreliminary)})
      .Bind(4, int64_t{std::clamp(limit, 1, 1000)});
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadReport(s); });
}

absl::StatusOr<std::vector<ReportRecord>> SqliteIndexStore::UnplannedReports(int32_t limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare("SELECT " RDG_REPORT_COLUMNS
                            " FROM reports WHERE seq > (SELECT planned_through FROM outbound_plan) "
                            "AND status != ? ORDER BY seq LIMIT ?"));
  q->Bind(1, int64_t{Number(ReportStatus::kPreliminary)})
      .Bind(2, int64_t{std::clamp(limit, 1, 1000)});
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadReport(s); });
}

absl::Status SqliteIndexStore::MarkDelivered(const std::vector<std::string>& report_ids,
                                             absl::Time now) {
  if (report_ids.empty()) return absl::OkStatus();
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::Status {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    for (const auto& id : report_ids) {
      RDG_ASSIGN_OR_RETURN(
          auto u,
          writer_->Prepare(
              "UPDATE reports SET delivered_at = ? WHERE report_id = ? AND delivered_at IS NULL "
              "RETURNING exam_id"));
      u->Bind(1, now).Bind(2, id);
      RDG_ASSIGN_OR_RETURN(bool first, u->Step());
      if (!first) continue;
      const std::string exam_id = u->Text(0);
      u.reset();
      RDG_RETURN_IF_ERROR(AddEvent(exam_id, ExamState::kDelivered, now, "system", id));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<ReportRecord> SqliteIndexStore::AcknowledgeReport(const std::string& report_id,
                                                                 const std::string& institution,
                                                                 const std::string& user,
                                                                 absl::Time now) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::StatusOr<ReportRecord> {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(
        auto q, writer_->Prepare("SELECT " RDG_REPORT_COLUMNS
                                 " FROM reports WHERE report_id = ? AND origin_institution = ? "
                                 "AND status != ?"));
    q->Bind(1, report_id).Bind(2, institution).Bind(3, int64_t{Number(ReportStatus::kPreliminary)});
    RDG_ASSIGN_OR_RETURN(bool found, q->Step());
    if (!found) {
      return absl::NotFoundError(absl::StrCat("no report ", report_id, " for ", institution));
    }
    ReportRecord r = ReadReport(*q);
    q.reset();
    if (r.acknowledged_at) return r;  // acknowledging twice changes nothing
    RDG_ASSIGN_OR_RETURN(
        auto u, writer_->Prepare("UPDATE reports SET acknowledged_at = ?, acknowledged_by = ?, "
                                 "delivered_at = COALESCE(delivered_at, ?) WHERE report_id = ?"));
    u->Bind(1, now).Bind(2, user).Bind(3, now).Bind(4, report_id);
    RDG_RETURN_IF_ERROR(u->Run());
    if (!r.delivered_at) {  // acknowledged before any delivery was recorded: it was delivered
      RDG_RETURN_IF_ERROR(AddEvent(r.exam_id, ExamState::kDelivered, now, "system", report_id));
    }
    RDG_RETURN_IF_ERROR(AddEvent(r.exam_id, ExamState::kAcknowledged, now, user, report_id));
    RDG_RETURN_IF_ERROR(
        EndStage(r.exam_id, Stage::kFinalToAcknowledged, now, r.reader_institution));
    // The critical clock stops when the clinic acknowledges the latest signed version: a
    // critical addendum is not acknowledged by acknowledging the report it amends.
    RDG_ASSIGN_OR_RETURN(
        auto latest,
        writer_->Prepare("SELECT MAX(version) FROM reports WHERE exam_id = ? AND status != ?"));
    latest->Bind(1, r.exam_id).Bind(2, int64_t{Number(ReportStatus::kPreliminary)});
    RDG_ASSIGN_OR_RETURN(bool has_latest, latest->Step());
    const bool is_latest = has_latest && latest->Int(0) == r.version;
    latest.reset();
    if (is_latest) {
      RDG_RETURN_IF_ERROR(
          EndStage(r.exam_id, Stage::kCriticalAcknowledgement, now, r.reader_institution));
    }
    r.acknowledged_at = now;
    r.acknowledged_by = user;
    if (!r.delivered_at) r.delivered_at = now;
    return r;
  });
}

}  // namespace rdg::storage
