#include "gateway/worklist/index_report_desk.h"

#include "absl/strings/str_cat.h"
#include "gateway/auth/rbac.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/status_macros.h"
#include "storage/vocabulary_proto.h"

namespace rdg::worklist {
namespace {

constexpr size_t kMaxTextBytes = 64 << 10;
constexpr size_t kMaxReasonBytes = 1 << 10;

}  // namespace

IndexReportDesk::IndexReportDesk(Stores stores, ReadingDesk& reading,
                                 const signing::SignatureVerifier& verifier,
                                 const routing::SlaTable& sla, const Clock& clock,
                                 absl::Duration max_clock_skew)
    : stores_(stores),
      reading_(reading),
      verifier_(verifier),
      sla_(sla),
      clock_(clock),
      max_clock_skew_(max_clock_skew) {}

absl::Status IndexReportDesk::CheckContent(const auth::Principal& reader,
                                           const rdg::v1::SubmitReportRequest& request) const {
  const auto& c = request.content();
  if (c.reader_user() != reader.user || c.reader_institution() != reader.institution) {
    return absl::InvalidArgumentError(
        "content.reader_user and reader_institution must be those of your certificate");
  }
  if (c.status() != rdg::v1::PRELIMINARY_REPORT && c.status() != rdg::v1::FINAL_REPORT &&
      c.status() != rdg::v1::AMENDED_REPORT) {
    return absl::InvalidArgumentError(
        "status must be PRELIMINARY_REPORT, FINAL_REPORT or AMENDED_REPORT");
  }
  if ((c.status() == rdg::v1::AMENDED_REPORT) == c.supersedes_report_id().empty()) {
    return absl::InvalidArgumentError(
        "an addendum (AMENDED_REPORT) names the version it amends in supersedes_report_id; "
        "other reports must not");
  }
  if ((c.status() == rdg::v1::AMENDED_REPORT) == c.amendment_reason().empty()) {
    return absl::InvalidArgumentError(
        "an addendum says why it amends the report (amendment_reason); other reports must not");
  }
  if (c.amendment_reason().size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError("amendment_reason is limited to 1 KiB");
  }
  if (c.findings().size() > kMaxTextBytes || c.impression().size() > kMaxTextBytes) {
    return absl::InvalidArgumentError("findings and impression are limited to 64 KiB each");
  }
  if (c.impression().empty()) return absl::InvalidArgumentError("a report needs an impression");
  if (request.canonical_bytes() != rdg::v1::CanonicalReportBytes(c)) {
    return absl::InvalidArgumentError(
        "canonical_bytes do not match the report content (see README \"Canonical report bytes\")");
  }
  return absl::OkStatus();
}

absl::Status IndexReportDesk::CheckDesk(const auth::Principal& reader,
                                        const storage::ExamRecord& exam,
                                        const rdg::v1::ReportContent& c) const {
  // The signed text names the desk, so a clinic sees where the report was read; only the desk
  // the configuration gives the reader for this exam's queue may be named.
  const std::string desk = reading_.SigningDesk(reader, exam.queue);
  if (c.desk() == desk) return absl::OkStatus();
  if (c.desk().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the report must name the desk at which ",
                                                   reader.user, " reads exam ", c.exam_id(),
                                                   ": desk \"", desk, "\""));
  }
  return absl::PermissionDeniedError(
      absl::StrCat(reader.user, " does not read exam ", c.exam_id(), " at desk \"", c.desk(), "\"",
                   desk.empty() ? std::string(" (their institution reads without desks: name none)")
                                : absl::StrCat(" (their desk for it: \"", desk, "\")")));
}

absl::Status IndexReportDesk::CheckSignature(const auth::Principal& reader,
                                             const rdg::v1::SubmitReportRequest& request,
                                             absl::Time now) const {
  const auto& c = request.content();
  const auto& sig = request.signature();
  if (c.status() != rdg::v1::PRELIMINARY_REPORT && sig.signature().empty()) {
    return absl::InvalidArgumentError("a FINAL report or addendum must be signed");
  }
  if (sig.signature().empty()) return absl::OkStatus();
  const absl::Time signed_at = absl::FromUnixSeconds(c.signed_at().seconds());
  if (absl::AbsDuration(signed_at - now) > max_clock_skew_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signed_at ", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", signed_at, absl::UTCTimeZone()),
        " is more than ", absl::FormatDuration(max_clock_skew_),
        " from the gateway's clock: sign again with your computer's clock set right"));
  }
  RDG_ASSIGN_OR_RETURN(auto signer,
                       verifier_.Verify(sig.format(), request.canonical_bytes(), sig.signature(),
                                        sig.signer_certificate_pem(), signed_at));
  // The signer certificate may differ from the TLS one (an SM2 signing key), but it must name
  // the same reader: the authenticated caller signs, nobody else.
  if (signer.organization != reader.institution || signer.organizational_unit != "reader" ||
      signer.common_name != reader.user) {
    return absl::PermissionDeniedError(absl::StrCat("the report is signed by ", signer.common_name,
                                                    " (", signer.organizational_unit, ", ",
                                                    signer.organization, "), not by you"));
  }
  return absl::OkStatus();
}

storage::ReportRecord IndexReportDesk::ToRecord(const auth::Principal& reader,
                                                const storage::ExamRecord& exam,
                                                const rdg::v1::SubmitReportRequest& request,
                                                absl::Time now) const {
  const auto& c = request.content();
  const auto& sig = request.signature();
  storage::ReportRecord r;
  r.exam_id = c.exam_id();
  r.status = storage::FromProto(c.status());
  r.critical = c.critical();
  r.reader_user = reader.user;
  r.reader_institution = reader.institution;
  r.supersedes = c.supersedes_report_id();
  r.content = c.SerializeAsString();
  r.canonical = request.canonical_bytes();
  r.signature_format = sig.signature().empty() ? storage::SignatureFormat::kUnspecified
                                               : storage::FromProto(sig.format());
  r.signature = sig.signature();
  r.signer_cert_pem = sig.signature().empty() ? "" : sig.signer_certificate_pem();
  // A critical result — flagged by the reader, or a critical value found on ingest (a lab 危急值)
  // — must be acknowledged by the clinic within the policy's critical target.
  // An addendum carries its own flag: a lab exam critical on ingest does not make every
  // addendum restart the clock.
  const bool signed_version = c.status() != rdg::v1::PRELIMINARY_REPORT;
  const bool critical_result =
      c.critical() || (exam.critical && c.status() == rdg::v1::FINAL_REPORT);
  if (signed_version && critical_result) {
    r.acknowledge_by = sla_.Due(rdg::v1::CRITICAL_ACKNOWLEDGEMENT, exam.exam_type,
                                storage::ToProto(exam.priority), now);
  }
  if (r.status == storage::ReportStatus::kFinal) {
    r.acknowledge_due = sla_.Due(rdg::v1::FINAL_TO_ACKNOWLEDGED, exam.exam_type,
                                 storage::ToProto(exam.priority), now);
  }
  return r;
}

absl::StatusOr<storage::ReportRecord> IndexReportDesk::Submit(
    const auth::Principal& reader, const rdg::v1::SubmitReportRequest& request) {
  RDG_ASSIGN_OR_RETURN(auto exam,
                       reading_.ExamInReadersQueues(reader, request.content().exam_id()));
  RDG_RETURN_IF_ERROR(CheckContent(reader, request));
  RDG_RETURN_IF_ERROR(CheckDesk(reader, exam, request.content()));
  const absl::Time now = clock_.Now();
  RDG_RETURN_IF_ERROR(CheckSignature(reader, request, now));
  RDG_ASSIGN_OR_RETURN(auto stored,
                       stores_.reports.AddReport(ToRecord(reader, exam, request, now), now));
  RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
      auth::AuditBy(reader, now, "submit_report", stored.exam_id, stored.report_id)));
  // Clinics hear of signed versions only.
  if (stored.status != storage::ReportStatus::kPreliminary) WakeWatchers(stored.origin_institution);
  return stored;
}

absl::StatusOr<ReportDesk::ExamReports> IndexReportDesk::Versions(
    const auth::Principal& reader, const std::string& exam_id,
    const std::string& break_glass_reason) {
  RDG_ASSIGN_OR_RETURN(
      auto exam, reading_.ExamInContextOfWork(reader, exam_id, "reports", break_glass_reason));
  ExamReports out;
  RDG_ASSIGN_OR_RETURN(out.versions, stores_.reports.ListReports(exam_id));
  out.desk = reading_.SigningDesk(reader, exam.queue);
  RDG_RETURN_IF_ERROR(
      stores_.audit.AppendAudit(auth::AuditBy(reader, clock_.Now(), "read_reports", exam_id,
                                              absl::StrCat(out.versions.size(), " versions"))));
  return out;
}

absl::StatusOr<std::vector<storage::ReportRecord>> IndexReportDesk::Feed(
    const auth::Principal& clinic, int64_t after_seq, int32_t limit) {
  RDG_RETURN_IF_ERROR(auth::Authorize(clinic, auth::Permission::kReceiveReports));
  RDG_ASSIGN_OR_RETURN(auto reports,
                       stores_.reports.ReportFeed(clinic.institution, after_seq, limit));
  std::vector<std::string> ids;
  for (const auto& r : reports) {
    if (!r.delivered_at) ids.push_back(r.report_id);
  }
  RDG_RETURN_IF_ERROR(stores_.reports.MarkDelivered(ids, clock_.Now()));
  // One record per report handed over, so each names its exam and patient.
  for (const storage::ReportRecord& r : reports) {
    RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
        auth::AuditBy(clinic, clock_.Now(), "receive_report", r.exam_id, r.report_id)));
  }
  return reports;
}

absl::StatusOr<storage::ReportRecord> IndexReportDesk::Acknowledge(const auth::Principal& clinic,
                                                                   const std::string& report_id) {
  RDG_RETURN_IF_ERROR(auth::Authorize(clinic, auth::Permission::kReceiveReports));
  RDG_ASSIGN_OR_RETURN(
      storage::ReportRecord acknowledged,
      stores_.reports.AcknowledgeReport(report_id, clinic.institution, clinic.user, clock_.Now()));
  RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
      auth::AuditBy(clinic, clock_.Now(), "acknowledge_report", acknowledged.exam_id, report_id)));
  return acknowledged;
}

absl::StatusOr<storage::ReportRecord> IndexReportDesk::Latest(const auth::Principal& clinic,
                                                              const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(auth::Authorize(clinic, auth::Permission::kReceiveReports));
  RDG_ASSIGN_OR_RETURN(auto exam, stores_.exams.GetExam(exam_id));
  RDG_RETURN_IF_ERROR(
      auth::AuthorizeExamAccess(clinic, exam_id, exam ? exam->origin_institution : ""));
  RDG_ASSIGN_OR_RETURN(auto versions, stores_.reports.ListReports(exam_id));
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (it->status != storage::ReportStatus::kPreliminary) {
      if (!it->delivered_at) {  // handing the report to its clinic is a delivery
        RDG_RETURN_IF_ERROR(stores_.reports.MarkDelivered({it->report_id}, clock_.Now()));
      }
      RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
          auth::AuditBy(clinic, clock_.Now(), "get_report", exam_id, it->report_id)));
      return *it;
    }
  }
  return absl::NotFoundError(absl::StrCat("exam ", exam_id, " has no final report yet"));
}

absl::StatusOr<absl::flat_hash_map<std::string, storage::ExamRecord>> IndexReportDesk::ExamsOf(
    const auth::Principal& clinic, const std::vector<storage::ReportRecord>& reports) {
  RDG_RETURN_IF_ERROR(auth::Authorize(clinic, auth::Permission::kReceiveReports));
  absl::flat_hash_map<std::string, storage::ExamRecord> exams;
  for (const storage::ReportRecord& r : reports) {
    if (exams.contains(r.exam_id)) continue;
    RDG_ASSIGN_OR_RETURN(std::optional<storage::ExamRecord> exam, stores_.exams.GetExam(r.exam_id));
    if (exam && exam->origin_institution == clinic.institution) {
      exams.emplace(r.exam_id, *std::move(exam));
    }
  }
  return exams;
}

int64_t IndexReportDesk::Subscribe(const std::string& institution, std::function<void()> wake) {
  absl::MutexLock lock(&mu_);
  const int64_t token = next_token_++;
  subscribers_.emplace(token, Subscriber{institution, std::move(wake)});
  return token;
}

void IndexReportDesk::Unsubscribe(int64_t token) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(token);
}

void IndexReportDesk::WakeWatchers(const std::string& institution) {
  absl::MutexLock lock(&mu_);
  for (auto& [token, s] : subscribers_) {
    if (institution.empty() || s.institution == institution) s.wake();
  }
}

}  // namespace rdg::worklist
