#include "storage/parsing/parsed_object.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/base/digest.h"
#include "storage/base/status_macros.h"
#include "storage/formats/dicom_parser.h"
#include "storage/formats/ecg_waveform.h"
#include "storage/formats/patient_identifiers.h"

namespace rdg::parsing {
namespace {

using formats::Hl7AckCode;

//! Keeps ids usable as index keys and file names: [A-Za-z0-9._-], anything else becomes '_'.
std::string SafeKey(absl::string_view s) {
  std::string out(s.substr(0, 40));
  for (char& c : out) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_')) c = '_';
  }
  return out;
}

//! An id for exact text that is safe as a key and a file name: readable (SafeKey of `shown`),
//! and distinct for distinct `exact` values (12 hex digits of their SHA-256), so that "2026/0001"
//! and "2026_0001", or senders 检验科 and 化验室, never collide as squashed text would.
std::string ExactKey(absl::string_view shown, absl::string_view exact) {
  storage::Sha256 h;
  h.Update(exact);
  return absl::StrCat(SafeKey(shown), "-", storage::ToHex(h.Finish()).substr(0, 12));
}

std::string FirstComponent(absl::string_view s) {
  return std::string(s.substr(0, std::min(s.find('^'), s.size())));
}

//! What identifies a message in HL7: its sender (MSH-3 application, MSH-4 facility) and its
//! control id (MSH-10), exactly as sent.
std::string MessageIdentity(const formats::Hl7Header& h) {
  return absl::StrCat(h.sending_application, "\x1F", h.sending_facility, "\x1F", h.control_id);
}

//! The order that groups a lab message into an exam: the filler order number (the lab's own),
//! else the placer's, else the message itself — whole (entity id and namespace), exactly as
//! sent, and of this patient (identifier and its assigning authority): an order number reused
//! for another patient never joins the first patient's exam.
std::string OrderKey(const formats::LabMessage& m) {
  const formats::LabOrder& first = m.orders.front();
  const std::string patient = absl::StrCat("\x1F", m.patient_id, "\x1F", m.patient_id_issuer);
  if (!first.filler_order_number.empty()) {
    return "hl7-order-" +
           ExactKey(FirstComponent(first.filler_order_number), first.filler_order_number + patient);
  }
  if (!first.placer_order_number.empty()) {
    return "hl7-placer-" +
           ExactKey(FirstComponent(first.placer_order_number), first.placer_order_number + patient);
  }
  return "hl7-msg-" + ExactKey(m.header.control_id, MessageIdentity(m.header));
}

//! The patient of an object: identifiers as given, and the national ID among them only when it
//! is usable (see formats::ChooseNationalId).
storage::PatientRecord Patient(std::string id, std::string issuer, std::string name,
                               std::string sex, std::string birth_date, std::string age,
                               const std::vector<formats::PatientIdentifier>& identifiers) {
  const formats::NationalIdChoice national =
      formats::ChooseNationalId(identifiers, birth_date, sex);
  storage::PatientRecord p;
  p.patient_id = std::move(id);
  p.name = std::move(name);
  p.sex = std::move(sex);
  p.birth_date = std::move(birth_date);
  p.national_id = national.id;
  p.age = std::move(age);
  p.id_issuer = std::move(issuer);
  p.national_id_issuer = national.issuer;
  p.national_id_problem = national.problem;
  return p;
}

storage::LabResultRecord ToLabResult(const formats::LabOrder& order,
                                     const formats::LabObservation& o, bool critical) {
  storage::LabResultRecord r;
  r.code = o.code;
  r.coding_system = o.coding_system;
  r.name = o.code_text;
  r.value = o.value;
  r.numeric = o.numeric;
  r.units = o.units;
  r.reference_range = o.reference_range;
  r.abnormal_flags = o.abnormal_flags;
  r.observed_at = o.observed_at.empty() ? order.observed_at : o.observed_at;
  r.critical = critical;
  r.order_service = order.service_text.empty() ? order.service_code : order.service_text;
  r.result_status = o.result_status;
  return r;
}

ParsedObject FromLabMessage(const formats::LabMessage& m, const CriticalValueTable& critical) {
  ParsedObject p;
  storage::ExamRecord& e = p.exam;
  e.study_instance_uid = OrderKey(m);
  e.patient = Patient(m.patient_id, m.patient_id_issuer, m.patient_name, m.sex, m.birth_date,
                      /*age=*/"", m.patient_identifiers);
  const formats::LabOrder& first = m.orders.front();
  // The whole order number, exactly as sent (entity id and namespace: "ORD#1^LIS").
  e.accession_number =
      first.filler_order_number.empty() ? first.placer_order_number : first.filler_order_number;
  e.exam_type = "LAB";
  e.modalities = {"LAB"};
  e.study_date = first.observed_at.substr(0, 8);
  if (first.observed_at.size() > 8) e.study_time = first.observed_at.substr(8, 6);
  std::vector<std::string> services;
  for (const formats::LabOrder& order : m.orders) {
    services.push_back(order.service_text.empty() ? order.service_code : order.service_text);
    for (const formats::LabObservation& o : order.observations) {
      const bool is_critical = critical.IsCritical(o);
      e.critical = e.critical || is_critical;
      p.lab_results.push_back(ToLabResult(order, o, is_critical));
    }
  }
  e.study_description = absl::StrJoin(services, ", ");
  storage::ObjectRecord& obj = p.object;
  obj.sop_instance_uid =
      absl::StrCat("hl7-", SafeKey(FirstComponent(m.header.sending_application)), "-",
                   ExactKey(m.header.control_id, MessageIdentity(m.header)));
  obj.series_instance_uid = e.study_instance_uid;
  obj.sop_class_uid = "HL7v2 ORU^R01";
  obj.transfer_syntax_uid =
      absl::StrCat("HL7 ", m.header.version, m.header.charset.empty() ? "" : " ", m.header.charset);
  obj.modality = "LAB";
  p.hl7_header = m.header;
  return p;
}

bool HasCriticalFlag(const formats::LabObservation& o) {
  return std::any_of(o.abnormal_flags.begin(), o.abnormal_flags.end(),
                     [](const std::string& f) { return f == "HH" || f == "LL" || f == "AA"; });
}

}  // namespace

CriticalValueTable::CriticalValueTable(
    const google::protobuf::RepeatedPtrField<rdg::v1::CriticalValueRule>& rules)
    : rules_(rules.begin(), rules.end()) {}

bool CriticalValueTable::IsCritical(const formats::LabObservation& o) const {
  if (HasCriticalFlag(o)) return true;
  if (!o.numeric.has_value()) return false;
  for (const auto& rule : rules_) {
    if (rule.code() != o.code) continue;
    if (!rule.coding_system().empty() && rule.coding_system() != o.coding_system) continue;
    if (rule.has_below() && *o.numeric < rule.below()) return true;
    if (rule.has_above() && *o.numeric > rule.above()) return true;
  }
  return false;
}

absl::StatusOr<ParsedObject> ParseDicomObject(const std::string& path) {
  RDG_ASSIGN_OR_RETURN(formats::DicomSummary d, formats::ParseDicomFile(path));
  const bool ecg = formats::IsEcgSopClass(d.sop_class_uid);
  if (ecg) {
    // The reader gets a rendered tracing: refuse a waveform that cannot be drawn now, while the
    // clinic can still resend it, rather than when a cardiologist opens it.
    auto recording = formats::ParseEcgWaveformFile(path);
    if (!recording.ok()) return recording.status();
    if (d.modality.empty()) d.modality = "ECG";
  }
  ParsedObject p;
  storage::ExamRecord& e = p.exam;
  e.study_instance_uid = d.study_instance_uid;
  e.patient = Patient(d.patient_id, d.patient_id_issuer, d.patient_name, d.patient_sex,
                      d.patient_birth_date, d.patient_age, d.other_patient_ids);
  if (e.patient.national_id.empty()) {
    // Clinics that file patients by their ID card number put it in Patient ID itself: used when
    // it is a valid one; anything else there is a local number, not a refused national ID.
    const formats::NationalIdChoice primary =
        formats::ChooseNationalId({{d.patient_id, d.patient_id_issuer, "", "(0010,0020)"}},
                                  d.patient_birth_date, d.patient_sex);
    if (!primary.id.empty()) {
      e.patient.national_id = primary.id;
      e.patient.national_id_issuer = primary.issuer;
      e.patient.national_id_problem.clear();
    }
  }
  e.accession_number = d.accession_number;
  e.exam_type = ecg ? "ECG" : (d.modality.empty() ? "OT" : d.modality);
  if (!d.modality.empty()) e.modalities.push_back(d.modality);
  e.body_part = d.body_part;
  e.study_date = d.study_date;
  e.study_time = d.study_time;
  e.study_description = d.study_description;
  storage::ObjectRecord& o = p.object;
  o.sop_instance_uid = d.sop_instance_uid;
  o.series_instance_uid = d.series_instance_uid;
  o.sop_class_uid = d.sop_class_uid;
  o.transfer_syntax_uid = d.transfer_syntax_uid;
  o.modality = d.modality;
  o.instance_number = d.instance_number;
  o.text_notes = d.text_notes;
  return p;
}

absl::StatusOr<ParsedObject> ParseLabObject(const std::string& path, int64_t size,
                                            const CriticalValueTable& critical, absl::Time now,
                                            absl::string_view ack_control_id) {
  std::string bytes(static_cast<size_t>(size), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(bytes.data(), size)) {
    return absl::InternalError("cannot read the staged lab message");
  }
  formats::LabParseOutcome parsed = formats::ParseLabMessage(bytes);
  if (parsed.message.has_value()) {
    ParsedObject p = FromLabMessage(*parsed.message, critical);
    storage::Sha256 h;
    h.Update(formats::CanonicalHl7(bytes));
    p.object.content_key = storage::ToHex(h.Finish());
    return p;
  }
  const formats::Hl7Rejection& r = *parsed.rejection;
  return AttachAck(absl::InvalidArgumentError(absl::StrCat(
                       "HL7 message rejected (", Hl7AckCodeName(r.code), "): ", r.reason)),
                   MakeAck(parsed.header, r.code, &r, now, ack_control_id));
}

rdg::v1::Hl7Acknowledgement MakeAck(const std::optional<formats::Hl7Header>& header,
                                    Hl7AckCode code, const formats::Hl7Rejection* rejection,
                                    absl::Time now, absl::string_view ack_control_id) {
  rdg::v1::Hl7Acknowledgement ack;
  ack.set_code(std::string(formats::Hl7AckCodeName(code)));
  ack.set_message(formats::BuildHl7Ack(header, code, rejection, now, ack_control_id));
  if (rejection != nullptr) ack.set_reason(rejection->reason);
  return ack;
}

absl::Status AttachAck(absl::Status status, const rdg::v1::Hl7Acknowledgement& ack) {
  status.SetPayload(kHl7AckTypeUrl, absl::Cord(ack.SerializeAsString()));
  return status;
}

std::optional<rdg::v1::Hl7Acknowledgement> AckOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kHl7AckTypeUrl);  // absl::optional in Debian's Abseil
  rdg::v1::Hl7Acknowledgement ack;
  if (!payload.has_value() || !ack.ParseFromString(std::string(*payload))) return std::nullopt;
  return ack;
}

}  // namespace rdg::parsing
