#include "gateway/api/convert.h"

#include <glog/logging.h>

#include <optional>

#include "google/protobuf/util/time_util.h"
#include "storage/base/digest.h"
#include "storage/formats/text.h"
#include "storage/vocabulary_proto.h"

namespace rdg::api {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

google::protobuf::Duration ToDurationProto(absl::Duration d) {
  return google::protobuf::util::TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(d));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(t));
}

namespace {

//! Text for a protobuf `string` field: a value that is not valid UTF-8 (an index row no repair
//! could fix) is shown with U+FFFD rather than failing the whole listing, and logged.
std::string Shown(const std::string& value, absl::string_view exam_id) {
  if (formats::IsValidUtf8(value)) return value;
  LOG(WARNING) << "exam " << exam_id << ": stored text is not UTF-8; shown with U+FFFD";
  return formats::ToValidUtf8(value);
}

}  // namespace

rdg::v1::Exam ToProto(const storage::ExamRecord& r,
                      const config::InstitutionDirectory& institutions) {
  rdg::v1::Exam e;
  const std::string& id = r.exam_id;
  e.set_exam_id(id);
  e.set_origin_institution(Shown(r.origin_institution, id));
  auto* p = e.mutable_patient();
  p->set_patient_id(Shown(r.patient.patient_id, id));
  p->set_name(Shown(r.patient.name, id));
  p->set_sex(Shown(r.patient.sex, id));
  p->set_birth_date(Shown(r.patient.birth_date, id));
  p->set_national_id(Shown(r.patient.national_id, id));
  p->set_display_name(formats::PersonNameForDisplay(p->name()));
  // The day the exam was made, else the day it arrived (China Standard Time's date is close
  // enough for an age in years, months or days).
  // Patient's Age as the modality wrote it, else from the birth date.
  if (!r.patient.age.empty()) {
    p->set_age(Shown(r.patient.age, id));
  } else {
    p->set_age(formats::AgeAt(
        p->birth_date(), r.study_date.size() >= 8
                             ? r.study_date
                             : absl::FormatTime("%Y%m%d", r.received_at, absl::UTCTimeZone())));
  }
  if (const auto* origin = institutions.Find(r.origin_institution)) {
    e.set_origin_institution_name(Shown(origin->name(), id));
  }
  e.set_study_instance_uid(Shown(r.study_instance_uid, id));
  e.set_accession_number(Shown(r.accession_number, id));
  e.set_exam_type(Shown(r.exam_type, id));
  for (const auto& m : r.modalities) e.add_modalities(Shown(m, id));
  e.set_body_part(Shown(r.body_part, id));
  e.set_study_date(Shown(r.study_date, id));
  e.set_study_time(Shown(r.study_time, id));
  e.set_study_description(Shown(r.study_description, id));
  e.set_priority(storage::ToProto(r.priority));
  e.set_state(storage::ToProto(r.state));
  e.set_instance_count(r.instance_count);
  e.set_total_bytes(r.total_bytes);
  *e.mutable_received_at() = ToTimestamp(r.received_at);
  *e.mutable_updated_at() = ToTimestamp(r.updated_at);
  e.set_queue(r.queue);
  if (r.sla_due_at != absl::InfiniteFuture()) *e.mutable_sla_due_at() = ToTimestamp(r.sla_due_at);
  e.set_critical(r.critical);
  e.set_escalated_by(formats::ToValidUtf8(r.escalated_by));
  e.set_escalation_reason(formats::ToValidUtf8(r.escalation_reason));
  return e;
}

rdg::v1::LabResult ToProto(const storage::LabResultRecord& r) {
  rdg::v1::LabResult l;
  l.set_exam_id(r.exam_id);
  l.set_origin_institution(r.origin_institution);
  l.set_code(r.code);
  l.set_coding_system(r.coding_system);
  l.set_name(r.name);
  l.set_value(r.value);
  l.set_has_numeric(r.numeric.has_value());
  if (r.numeric) l.set_numeric(*r.numeric);
  l.set_units(r.units);
  l.set_reference_range(r.reference_range);
  for (const auto& f : r.abnormal_flags) l.add_abnormal_flags(f);
  l.set_observed_at(r.observed_at);
  l.set_critical(r.critical);
  l.set_order_service(r.order_service);
  l.set_result_status(r.result_status);
  return l;
}

rdg::v1::StoredObject ToProto(const storage::ObjectRecord& r) {
  rdg::v1::StoredObject o;
  o.set_sop_instance_uid(Shown(r.sop_instance_uid, r.exam_id));
  o.set_series_instance_uid(Shown(r.series_instance_uid, r.exam_id));
  o.set_sop_class_uid(Shown(r.sop_class_uid, r.exam_id));
  o.set_transfer_syntax_uid(Shown(r.transfer_syntax_uid, r.exam_id));
  o.set_modality(Shown(r.modality, r.exam_id));
  o.set_instance_number(r.instance_number);
  o.set_size(r.size);
  if (auto d = storage::DigestFromHexOrRaw(r.sha256_hex); d.ok()) o.set_sha256(storage::ToRaw(*d));
  o.set_kind(storage::ToProto(r.kind));
  *o.mutable_received_at() = ToTimestamp(r.received_at);
  o.set_text_notes(Shown(r.text_notes, r.exam_id));
  return o;
}

rdg::v1::ExamEvent ToProto(const storage::ExamEventRecord& r) {
  rdg::v1::ExamEvent e;
  e.set_state(storage::ToProto(r.state));
  *e.mutable_at() = ToTimestamp(r.at);
  e.set_actor(r.actor);
  e.set_detail(r.detail);
  return e;
}

}  // namespace rdg::api

namespace rdg::api {

rdg::v1::ReportVersion ToProto(const storage::ReportRecord& r) {
  rdg::v1::ReportVersion v;
  v.set_report_id(r.report_id);
  v.set_version(r.version);
  v.mutable_content()->ParseFromString(r.content);
  v.set_canonical_bytes(r.canonical);
  if (!r.signature.empty()) {
    v.mutable_signature()->set_format(storage::ToProto(r.signature_format));
    v.mutable_signature()->set_signature(r.signature);
    v.mutable_signature()->set_signer_certificate_pem(r.signer_cert_pem);
  }
  *v.mutable_accepted_at() = ToTimestamp(r.accepted_at);
  return v;
}

rdg::v1::DeliveredReport ToDelivered(const storage::ReportRecord& r,
                                     const storage::ExamRecord* exam,
                                     const config::InstitutionDirectory& institutions,
                                     const std::string& platform_name) {
  rdg::v1::DeliveredReport d;
  if (exam != nullptr) *d.mutable_exam() = ToProto(*exam, institutions);
  const rdg::v1::Institution* reader = institutions.Find(r.reader_institution);
  d.set_reader_institution_name(reader != nullptr ? reader->name() : r.reader_institution);
  d.set_platform_name(platform_name);
  d.set_cursor(std::to_string(r.seq));
  *d.mutable_report() = ToProto(r);
  d.set_urgent(r.critical || r.acknowledge_by.has_value());  // critical: a deadline is set
  if (r.acknowledge_by) *d.mutable_acknowledge_by() = ToTimestamp(*r.acknowledge_by);
  d.set_acknowledged(r.acknowledged_at.has_value());
  return d;
}

}  // namespace rdg::api
