#include "gateway/api/convert.h"

#include "google/protobuf/util/time_util.h"
#include "storage/digest.h"

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

rdg::v1::Exam ToProto(const storage::ExamRecord& r) {
  rdg::v1::Exam e;
  e.set_exam_id(r.exam_id);
  e.set_origin_institution(r.origin_institution);
  auto* p = e.mutable_patient();
  p->set_patient_id(r.patient.patient_id);
  p->set_name(r.patient.name);
  p->set_sex(r.patient.sex);
  p->set_birth_date(r.patient.birth_date);
  p->set_national_id(r.patient.national_id);
  e.set_study_instance_uid(r.study_instance_uid);
  e.set_accession_number(r.accession_number);
  e.set_exam_type(r.exam_type);
  for (const auto& m : r.modalities) e.add_modalities(m);
  e.set_body_part(r.body_part);
  e.set_study_date(r.study_date);
  e.set_study_time(r.study_time);
  e.set_study_description(r.study_description);
  e.set_priority(r.priority);
  e.set_state(r.state);
  e.set_instance_count(r.instance_count);
  e.set_total_bytes(r.total_bytes);
  *e.mutable_received_at() = ToTimestamp(r.received_at);
  *e.mutable_updated_at() = ToTimestamp(r.updated_at);
  e.set_queue(r.queue);
  if (r.sla_due_at != absl::InfiniteFuture()) *e.mutable_sla_due_at() = ToTimestamp(r.sla_due_at);
  e.set_critical(r.critical);
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
  o.set_sop_instance_uid(r.sop_instance_uid);
  o.set_series_instance_uid(r.series_instance_uid);
  o.set_sop_class_uid(r.sop_class_uid);
  o.set_transfer_syntax_uid(r.transfer_syntax_uid);
  o.set_modality(r.modality);
  o.set_instance_number(r.instance_number);
  o.set_size(r.size);
  if (auto d = storage::DigestFromHexOrRaw(r.sha256_hex); d.ok()) o.set_sha256(storage::ToRaw(*d));
  o.set_kind(r.kind);
  *o.mutable_received_at() = ToTimestamp(r.received_at);
  return o;
}

rdg::v1::ExamEvent ToProto(const storage::ExamEventRecord& r) {
  rdg::v1::ExamEvent e;
  e.set_state(r.state);
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
    v.mutable_signature()->set_format(r.signature_format);
    v.mutable_signature()->set_signature(r.signature);
    v.mutable_signature()->set_signer_certificate_pem(r.signer_cert_pem);
  }
  *v.mutable_accepted_at() = ToTimestamp(r.accepted_at);
  return v;
}

rdg::v1::DeliveredReport ToDelivered(const storage::ReportRecord& r) {
  rdg::v1::DeliveredReport d;
  d.set_cursor(std::to_string(r.seq));
  *d.mutable_report() = ToProto(r);
  d.set_urgent(r.critical || r.acknowledge_by.has_value());  // critical: a deadline is set
  if (r.acknowledge_by) *d.mutable_acknowledge_by() = ToTimestamp(*r.acknowledge_by);
  d.set_acknowledged(r.acknowledged_at.has_value());
  return d;
}

}  // namespace rdg::api
