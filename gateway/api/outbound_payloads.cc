#include "gateway/api/outbound_payloads.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/api/convert.h"
#include "rdg/v1/reading.pb.h"
#include "storage/base/digest.h"
#include "storage/base/status_macros.h"
#include "storage/base/version.h"
#include "storage/documents/report_dicom.h"
#include "storage/documents/report_pdf.h"
#include "storage/formats/hl7_report.h"

namespace rdg::api {

using storage::OutboundJob;
using storage::OutboundKind;

constexpr char kExplicitVrLittleEndian[] = "1.2.840.10008.1.2.1";
constexpr char kBasicTextSr[] = "1.2.840.10008.5.1.4.1.1.88.11";
constexpr char kEncapsulatedPdf[] = "1.2.840.10008.5.1.4.1.1.104.1";

//! A job's report version, its signed content and its exam.
struct IndexPayloads::Subject {
  storage::ReportRecord report;
  rdg::v1::ReportContent content;
  storage::ExamRecord exam;
};

absl::StatusOr<IndexPayloads::Subject> IndexPayloads::Load(const OutboundJob& job) {
  Subject s;
  RDG_ASSIGN_OR_RETURN(auto versions, stores_.reports.ListReports(job.exam_id));
  bool found = false;
  for (auto& v : versions) {
    if (v.report_id == job.report_id) {
      s.report = std::move(v);
      found = true;
    }
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no report ", job.report_id));
  if (!s.content.ParseFromString(s.report.content)) {
    return absl::DataLossError(absl::StrCat("report ", job.report_id, " cannot be read"));
  }
  RDG_ASSIGN_OR_RETURN(auto exam, stores_.exams.GetExam(job.exam_id));
  if (!exam.has_value()) return absl::NotFoundError(absl::StrCat("no exam ", job.exam_id));
  s.exam = *std::move(exam);
  return s;
}

namespace {

//! `n` (not negative) in base 36, upper case: a short, stable token for an HL7 control id.
std::string ControlIdBase36(int64_t n) {
  std::string out;
  do {
    out.insert(out.begin(), "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 36]);
    n /= 36;
  } while (n > 0);
  return out;
}

//! The report version as the documents' builder takes it.
documents::ReportDocumentInput DocumentInput(const storage::ReportRecord& report,
                                             const rdg::v1::ReportContent& content,
                                             const storage::ExamRecord& exam,
                                             const std::vector<storage::ObjectRecord>& objects,
                                             const std::string& reader_institution_name,
                                             const std::string& reader_name, absl::TimeZone zone) {
  documents::ReportDocumentInput in;
  in.patient_name = exam.patient.name;
  in.patient_id = exam.patient.patient_id;
  in.issuer_of_patient_id = exam.patient.id_issuer;
  in.patient_birth_date = exam.patient.birth_date;
  in.patient_sex = exam.patient.sex;
  in.study_instance_uid = exam.study_instance_uid;
  in.study_date = exam.study_date;
  in.study_time = exam.study_time;
  in.accession_number = exam.accession_number;
  in.study_description = exam.study_description;
  in.document_key = absl::StrCat(report.report_id, "/v", report.version);
  in.findings = content.findings();
  in.impression = content.impression();
  in.amendment_reason = content.amendment_reason();
  in.critical = report.critical;
  in.observer_name = reader_name.empty() ? report.reader_user : reader_name;
  in.observer_user = report.reader_user;
  in.observer_organization = reader_institution_name;
  in.signed_at = content.has_signed_at() ? FromTimestamp(content.signed_at()) : report.accepted_at;
  in.zone = zone;
  in.software_version = absl::StrCat("RDG ", ReleaseVersion());
  for (const auto& o : objects) {
    if (o.kind != storage::ObjectKind::kDicom) continue;
    in.evidence.push_back({o.series_instance_uid, o.sop_class_uid, o.sop_instance_uid});
  }
  return in;
}

}  // namespace

absl::StatusOr<std::vector<outbound::DicomObject>> IndexPayloads::DicomObjectsOf(
    const OutboundJob& job) {
  RDG_ASSIGN_OR_RETURN(Subject s, Load(job));
  RDG_ASSIGN_OR_RETURN(auto objects, stores_.exams.ListObjects(job.exam_id));
  std::vector<outbound::DicomObject> out;
  if (job.kind == OutboundKind::kStudyImages) {
    for (const auto& o : objects) {
      if (o.kind != storage::ObjectKind::kDicom) continue;
      RDG_ASSIGN_OR_RETURN(storage::Digest digest, storage::DigestFromHexOrRaw(o.sha256_hex));
      out.push_back(
          {o.sop_class_uid, o.sop_instance_uid, o.transfer_syntax_uid, blobs_.PathOf(digest), ""});
    }
    return out;
  }
  // The documents name the report version: the amended one's key for an addendum.
  documents::ReportDocumentInput in = DocumentInput(
      s.report, s.content, s.exam, objects, directory_.Name(s.report.reader_institution),
      directory_.PersonName(s.report.reader_institution, s.report.reader_user), zone_);
  if (!s.report.supersedes.empty()) {
    RDG_ASSIGN_OR_RETURN(auto versions, stores_.reports.ListReports(job.exam_id));
    for (const auto& v : versions) {
      if (v.report_id == s.report.supersedes) {
        in.predecessor_key = absl::StrCat(v.report_id, "/v", v.version);
      }
    }
  }
  const documents::ReportDocumentUids uids =
      documents::UidsOf(in.study_instance_uid, in.document_key);
  if (job.kind == OutboundKind::kReportSr) {
    RDG_ASSIGN_OR_RETURN(std::string sr, documents::BuildReportSr(in));
    out.push_back(
        {kBasicTextSr, uids.sr_sop_instance_uid, kExplicitVrLittleEndian, "", std::move(sr)});
    return out;
  }
  if (job.kind != OutboundKind::kReportPdf) {
    return absl::InvalidArgumentError(
        absl::StrCat("a DICOM destination takes no ", storage::OutboundKindName(job.kind)));
  }
  // The printed report: the one a clinic files, its signature verified by this gateway when the
  // reader signed (the gateway accepts no report whose signature does not verify).
  documents::ReportPrintout printout;
  printout.signature_verified = !s.report.signature.empty();
  printout.signature_detail = printout.signature_verified
                                  ? "签名已由平台网关在签发时验证 (verified by the gateway)"
                                  : "未签名 (not signed)";
  printout.signer_name = directory_.DisplayName(s.report.reader_institution, s.report.reader_user);
  printout.zone = zone_;
  RDG_ASSIGN_OR_RETURN(std::string pdf,
                       documents::RenderReportPdf(
                           ToDelivered(s.report, &s.exam, directory_, platform_name_), printout));
  RDG_ASSIGN_OR_RETURN(std::string doc, documents::BuildReportPdf(in, pdf));
  out.push_back(
      {kEncapsulatedPdf, uids.pdf_sop_instance_uid, kExplicitVrLittleEndian, "", std::move(doc)});
  return out;
}

absl::StatusOr<std::string> IndexPayloads::MessageOf(const OutboundJob& job,
                                                     const outbound::Destination& destination) {
  RDG_ASSIGN_OR_RETURN(Subject s, Load(job));
  formats::ReportMessageInput m;
  m.sending_facility = s.report.reader_institution;
  m.receiving_application = destination.config.hl7().receiving_application();
  m.receiving_facility = destination.config.hl7().receiving_facility();
  // The same at every attempt of the job, and not the same as an earlier job's that had its id
  // before an older index backup was restored (a HIS may drop a control id it has seen): the
  // job's id and the second it was planned, base 36. At most 20 characters (MSH-10 in v2.5).
  m.control_id =
      absl::StrCat("RDG", job.job_id, ".",
                   ControlIdBase36(std::max<int64_t>(absl::ToUnixSeconds(job.created_at), 0)));
  m.sent_at =
      s.content.has_signed_at() ? FromTimestamp(s.content.signed_at()) : s.report.accepted_at;
  m.zone = zone_;
  m.patient_id = s.exam.patient.patient_id;
  m.issuer_of_patient_id = s.exam.patient.id_issuer;
  m.patient_name = s.exam.patient.name;
  m.birth_date = s.exam.patient.birth_date;
  m.sex = s.exam.patient.sex;
  m.placer_order_number = s.exam.accession_number;
  m.filler_order_number = s.exam.exam_id;
  m.service_code = s.exam.exam_type;
  m.service_text = s.exam.study_description;
  m.observed_at = s.exam.study_date + s.exam.study_time;
  m.diagnostic_section = s.exam.exam_type == "ECG"   ? "EC"
                         : s.exam.exam_type == "LAB" ? "LAB"
                                                     : "RAD";
  m.amended = s.report.status == storage::ReportStatus::kAmended;
  m.critical = s.report.critical;
  m.findings = s.content.findings();
  m.impression = s.content.impression();
  m.amendment_reason = s.content.amendment_reason();
  m.reader_user = s.report.reader_user;
  m.reader_name = directory_.PersonName(s.report.reader_institution, s.report.reader_user);
  if (m.reader_name.empty()) m.reader_name = s.report.reader_user;
  m.signed_at = m.sent_at;
  m.signed_report_pointer = absl::StrCat("rdg:report/", s.report.report_id, "/v", s.report.version);
  return formats::BuildReportOru(m);
}

}  // namespace rdg::api
