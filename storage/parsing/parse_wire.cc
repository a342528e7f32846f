#include "storage/parsing/parse_wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace rdg::parsing {
namespace {

rdg::v1::ParsedExam ToProto(const storage::ExamRecord& e) {
  rdg::v1::ParsedExam p;
  p.set_study_instance_uid(e.study_instance_uid);
  auto* patient = p.mutable_patient();
  patient->set_patient_id(e.patient.patient_id);
  patient->set_name(e.patient.name);
  patient->set_sex(e.patient.sex);
  patient->set_birth_date(e.patient.birth_date);
  patient->set_national_id(e.patient.national_id);
  patient->set_age(e.patient.age);
  patient->set_id_issuer(e.patient.id_issuer);
  patient->set_national_id_issuer(e.patient.national_id_issuer);
  patient->set_national_id_problem(e.patient.national_id_problem);
  p.set_accession_number(e.accession_number);
  p.set_exam_type(e.exam_type);
  for (const auto& m : e.modalities) p.add_modalities(m);
  p.set_body_part(e.body_part);
  p.set_study_date(e.study_date);
  p.set_study_time(e.study_time);
  p.set_study_description(e.study_description);
  p.set_critical(e.critical);
  return p;
}

storage::ExamRecord FromProto(const rdg::v1::ParsedExam& p) {
  storage::ExamRecord e;
  e.study_instance_uid = p.study_instance_uid();
  e.patient = {p.patient().patient_id(),
               p.patient().name(),
               p.patient().sex(),
               p.patient().birth_date(),
               p.patient().national_id(),
               p.patient().age(),
               p.patient().id_issuer(),
               p.patient().national_id_issuer(),
               p.patient().national_id_problem()};
  e.accession_number = p.accession_number();
  e.exam_type = p.exam_type();
  e.modalities.assign(p.modalities().begin(), p.modalities().end());
  e.body_part = p.body_part();
  e.study_date = p.study_date();
  e.study_time = p.study_time();
  e.study_description = p.study_description();
  e.critical = p.critical();
  return e;
}

rdg::v1::ParsedInstance ToProto(const storage::ObjectRecord& o) {
  rdg::v1::ParsedInstance p;
  p.set_sop_instance_uid(o.sop_instance_uid);
  p.set_series_instance_uid(o.series_instance_uid);
  p.set_sop_class_uid(o.sop_class_uid);
  p.set_transfer_syntax_uid(o.transfer_syntax_uid);
  p.set_modality(o.modality);
  p.set_instance_number(o.instance_number);
  p.set_content_key(o.content_key);
  p.set_text_notes(o.text_notes);
  return p;
}

storage::ObjectRecord FromProto(const rdg::v1::ParsedInstance& p) {
  storage::ObjectRecord o;
  o.sop_instance_uid = p.sop_instance_uid();
  o.series_instance_uid = p.series_instance_uid();
  o.sop_class_uid = p.sop_class_uid();
  o.transfer_syntax_uid = p.transfer_syntax_uid();
  o.modality = p.modality();
  o.instance_number = p.instance_number();
  o.content_key = p.content_key();
  o.text_notes = p.text_notes();
  return o;
}

rdg::v1::ParsedLabResult ToProto(const storage::LabResultRecord& r) {
  rdg::v1::ParsedLabResult p;
  p.set_code(r.code);
  p.set_coding_system(r.coding_system);
  p.set_name(r.name);
  p.set_value(r.value);
  if (r.numeric.has_value()) p.set_numeric(*r.numeric);
  p.set_units(r.units);
  p.set_reference_range(r.reference_range);
  for (const auto& f : r.abnormal_flags) p.add_abnormal_flags(f);
  p.set_observed_at(r.observed_at);
  p.set_critical(r.critical);
  p.set_order_service(r.order_service);
  p.set_result_status(r.result_status);
  return p;
}

storage::LabResultRecord FromProto(const rdg::v1::ParsedLabResult& p) {
  storage::LabResultRecord r;
  r.code = p.code();
  r.coding_system = p.coding_system();
  r.name = p.name();
  r.value = p.value();
  if (p.has_numeric()) r.numeric = p.numeric();
  r.units = p.units();
  r.reference_range = p.reference_range();
  r.abnormal_flags.assign(p.abnormal_flags().begin(), p.abnormal_flags().end());
  r.observed_at = p.observed_at();
  r.critical = p.critical();
  r.order_service = p.order_service();
  r.result_status = p.result_status();
  return r;
}

rdg::v1::ParsedHl7Header ToProto(const formats::Hl7Header& h) {
  rdg::v1::ParsedHl7Header p;
  p.set_field_separator(std::string(1, h.field_separator));
  p.set_encoding_characters(h.encoding_characters);
  p.set_sending_application(h.sending_application);
  p.set_sending_facility(h.sending_facility);
  p.set_receiving_application(h.receiving_application);
  p.set_receiving_facility(h.receiving_facility);
  p.set_message_time(h.message_time);
  p.set_message_type(h.message_type);
  p.set_control_id(h.control_id);
  p.set_processing_id(h.processing_id);
  p.set_version(h.version);
  p.set_charset(h.charset);
  return p;
}

formats::Hl7Header FromProto(const rdg::v1::ParsedHl7Header& p) {
  formats::Hl7Header h;
  if (p.field_separator().size() == 1) h.field_separator = p.field_separator()[0];
  h.encoding_characters = p.encoding_characters();
  h.sending_application = p.sending_application();
  h.sending_facility = p.sending_facility();
  h.receiving_application = p.receiving_application();
  h.receiving_facility = p.receiving_facility();
  h.message_time = p.message_time();
  h.message_type = p.message_type();
  h.control_id = p.control_id();
  h.processing_id = p.processing_id();
  h.version = p.version();
  h.charset = p.charset();
  return h;
}

//! Waits until `fd` is readable or `deadline` passes.
absl::Status AwaitReadable(int fd, absl::Time deadline) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("no answer in time");
    pollfd p{fd, POLLIN, 0};
    const int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left), 59999) + 1);
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return absl::OkStatus();
    if (r < 0 && errno != EINTR)
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
  }
}

absl::Status ReadFully(int fd, char* buf, size_t n, absl::Time deadline) {
  size_t got = 0;
  while (got < n) {
    if (auto s = AwaitReadable(fd, deadline); !s.ok()) return s;
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r == 0) return absl::UnavailableError("the peer closed the connection");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno)));
    }
    got += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

}  // namespace

rdg::v1::ParseResponse ToResponse(const absl::StatusOr<parsing::ParsedObject>& result) {
  rdg::v1::ParseResponse r;
  if (!result.ok()) {
    r.set_status_code(static_cast<int32_t>(result.status().code()));
    r.set_status_message(std::string(result.status().message()));
    if (auto ack = parsing::AckOf(result.status())) *r.mutable_rejection_ack() = *std::move(ack);
    return r;
  }
  *r.mutable_exam() = ToProto(result->exam);
  *r.mutable_object() = ToProto(result->object);
  for (const auto& l : result->lab_results) *r.add_lab_results() = ToProto(l);
  if (result->hl7_header.has_value()) *r.mutable_hl7_header() = ToProto(*result->hl7_header);
  return r;
}

absl::StatusOr<parsing::ParsedObject> FromResponse(const rdg::v1::ParseResponse& r) {
  if (r.status_code() != 0) {
    absl::Status status(static_cast<absl::StatusCode>(r.status_code()), r.status_message());
    if (r.has_rejection_ack()) return parsing::AttachAck(std::move(status), r.rejection_ack());
    return status;
  }
  parsing::ParsedObject p;
  p.exam = FromProto(r.exam());
  p.object = FromProto(r.object());
  for (const auto& l : r.lab_results()) p.lab_results.push_back(FromProto(l));
  if (r.has_hl7_header()) p.hl7_header = FromProto(r.hl7_header());
  return p;
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message) {
  std::string frame(4, '\0');
  const size_t size = message.ByteSizeLong();
  if (size > kMaxFrameBytes) return absl::ResourceExhaustedError("message too large for a frame");
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((size >> (8 * i)) & 0xFF);
  if (!message.AppendToString(&frame)) return absl::InternalError("cannot serialize a frame");
  for (size_t sent = 0; sent < frame.size();) {
    const ssize_t w = ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("write: ", std::strerror(errno)));
    }
    sent += static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status ReadFrame(int fd, google::protobuf::MessageLite& message, absl::Time deadline) {
  unsigned char header[4];
  if (auto s = ReadFully(fd, reinterpret_cast<char*>(header), 4, deadline); !s.ok()) return s;
  const uint32_t size = uint32_t{header[0]} | uint32_t{header[1]} << 8 | uint32_t{header[2]} << 16 |
                        uint32_t{header[3]} << 24;
  if (size > kMaxFrameBytes) return absl::DataLossError("frame larger than allowed");
  std::string body(size, '\0');
  if (auto s = ReadFully(fd, body.data(), size, deadline); !s.ok()) return s;
  if (!message.ParseFromString(body)) return absl::DataLossError("malformed frame");
  return absl::OkStatus();
}

}  // namespace rdg::parsing
