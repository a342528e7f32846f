// Plain records exchanged with the index's stores: no protobuf. Their enumerations are the index's
// vocabulary (vocabulary.h), numbered as the API's; the gateway converts at its edge
// (vocabulary_proto.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "storage/vocabulary.h"

namespace rdg::storage {

struct PatientRecord {
  std::string patient_id;
  std::string name;
  std::string sex;
  std::string birth_date;
  std::string national_id;
  std::string age;        //!< Patient's Age as written ("045Y"); empty when not given or malformed
  std::string id_issuer;  //!< who assigned patient_id: DICOM (0010,0021), HL7 CX.4
  //! Where the national ID came from: "issuer^type" as the sender gave them, else its source
  //! ("(0010,1000)"). Empty when there is no national ID.
  std::string national_id_issuer;
  //! Not stored with the exam: why an offered national ID was refused (placeholder, check digit,
  //! birth date, sex); ingest lists it for the administrators. Never patient data.
  std::string national_id_problem;
};

//! Study-level attributes of an exam.
struct ExamRecord {
  std::string exam_id;
  std::string origin_institution;
  std::string study_instance_uid;
  PatientRecord patient;
  std::string accession_number;
  std::string exam_type;
  std::vector<std::string> modalities;
  std::string body_part;
  std::string study_date;
  std::string study_time;
  std::string study_description;
  Priority priority = Priority::kRoutine;
  ExamState state = ExamState::kReceived;
  std::string queue;
  int32_t instance_count = 0;
  int64_t total_bytes = 0;
  absl::Time received_at;
  absl::Time updated_at;
  absl::Time sla_due_at = absl::InfiniteFuture();    //!< final report due (routing + SLA policy)
  absl::Time claim_due_at = absl::InfiniteFuture();  //!< claim target in the current queue
  bool critical = false;          //!< a critical value was found on ingest (lab 危急值)
  std::string escalated_by;       //!< the latest escalation's actor ("system": SLA); "" if none
  std::string escalation_reason;  //!< … and its reason, for the desk that receives the exam
};

//! One lab observation (HL7 v2 OBX) of a LAB exam.
struct LabResultRecord {
  std::string exam_id;  //!< filled in by the store on commit
  std::string origin_institution;
  std::string code;
  std::string coding_system;
  std::string name;
  std::string value;
  std::optional<double> numeric;
  std::string units;
  std::string reference_range;
  std::vector<std::string> abnormal_flags;
  std::string observed_at;  //!< HL7 TS as received
  bool critical = false;
  std::string order_service;
  std::string result_status;
};

//! Where a new exam goes, decided by the router before the commit.
struct RoutingRecord {
  std::string queue;
  Priority priority = Priority::kRoutine;
  absl::Time sla_due_at = absl::InfiniteFuture();
  absl::Time claim_due_at = absl::InfiniteFuture();  //!< SLA claim target: auto-escalation after
  std::string detail;  //!< for the ROUTED event, e.g. "rule county-a-imaging" (no PHI)
};

//! One stored object (instance) of an exam.
struct ObjectRecord {
  std::string origin_institution;
  std::string exam_id;
  std::string sop_instance_uid;
  std::string series_instance_uid;
  std::string sop_class_uid;
  std::string transfer_syntax_uid;
  std::string modality;
  int32_t instance_number = 0;
  ObjectKind kind = ObjectKind::kDicom;
  int64_t size = 0;
  std::string sha256_hex;
  absl::Time received_at;
  //! HL7 messages: SHA-256 of the message's segments (formats::CanonicalHl7), so that a re-send
  //! with other line ends or framing is the same message; empty for DICOM.
  std::string content_key;
  //! DICOM text that was not as its Specific Character Set declared, and how it was read
  //! (formats::DicomSummary::text_notes); empty when all was. No PHI.
  std::string text_notes;
};

struct ExamEventRecord {
  std::string exam_id;
  ExamState state = ExamState::kUnspecified;
  absl::Time at;
  std::string actor;
  std::string detail;
};

//! A persisted upload session; its committed offset is the size of its staged part file.
struct UploadSessionRecord {
  std::string session_id;
  std::string institution;
  std::string user;
  ObjectKind kind = ObjectKind::kDicom;
  int64_t size = 0;
  std::string sha256_hex;
  Priority priority = Priority::kUnspecified;
  std::string client_ref;
  absl::Time created_at;
  absl::Time updated_at;
};

//! Where a page of an institution's upload sessions ends (they are listed by creation time).
struct SessionCursor {
  absl::Time created_at;
  std::string session_id;
};

//! Where a page of an exam's objects ends (they are listed by series, instance number, SOP UID).
struct ObjectCursor {
  std::string series_instance_uid;
  int32_t instance_number = 0;
  std::string sop_instance_uid;
};

struct AuditRecord {
  int64_t seq = 0;
  absl::Time at;
  std::string institution;
  std::string user;
  Role role = Role::kUnspecified;
  std::string action;
  std::string exam_id;
  std::string detail;   //!< free text for people
  std::string outcome;  //!< "" (success) or the refusal's status code name
  //! The patient participant in HL7 CX form ("ID^^^issuer", then "~national ID^^^issuer" when
  //! known); left empty, the store fills it from `exam_id`.
  std::string patient_id;
  std::string peer;       //!< the caller's address
  std::string subject;    //!< the caller's certificate subject
  std::string prev_hash;  //!< read back: the chain link it continues from (32 bytes)
  std::string hash;       //!< read back: its own link (storage/base/audit_chain.h)
};

//! One object to make visible: the object row, the exam it joins (created from `exam` when the
//! origin institution has no exam for that Study Instance UID yet, and then routed: state ROUTED,
//! queue, priority and SLA due time from `routing`, RECEIVED and ROUTED events), and removal of
//! the upload session — all in one transaction.
struct NewObject {
  ExamRecord exam;         //!< study-level attributes taken from this object; exam_id ignored
  RoutingRecord routing;   //!< applied only when this object creates the exam
  ObjectRecord object;     //!< exam_id filled in by the store
  std::string session_id;  //!< upload session to delete (may be empty)
  std::string actor;       //!< user recorded on the RECEIVED event
  //! LAB objects: the message's observations, indexed with the object (not for a duplicate).
  std::vector<LabResultRecord> lab_results;
  //! Called in the commit's transaction when the object would join an existing exam (never for
  //! a duplicate): a non-OK status refuses this object (nothing of it is stored) and is its
  //! outcome. Ingest uses it to keep one exam one patient.
  std::function<absl::Status(const ExamRecord& existing)> check_join;
  //! The upload's audit record, appended in the commit's transaction with the exam filled in
  //! (" (already stored)" added to its detail for a duplicate).
  std::optional<AuditRecord> audit;
};

struct CommitOutcome {
  std::string exam_id;
  bool duplicate = false;  //!< same SOP Instance UID and bytes already stored: nothing added
  bool new_exam = false;
  int32_t exam_instance_count = 0;
};

struct ExamQuery {
  std::string origin_institution;  //!< required: RBAC scopes every listing
  std::optional<ExamState> state;
  int32_t limit = 100;
  int64_t before_seq = 0;  //!< keyset paging: 0 = from the newest
};

struct ExamPage {
  std::vector<ExamRecord> exams;
  int64_t next_before_seq = 0;  //!< 0 when there is no further page
};

//! A reader's lease on an exam.
struct ClaimRecord {
  std::string exam_id;
  std::string holder_user;
  std::string holder_institution;
  absl::Time claimed_at;
  absl::Time expires_at;
};

//! A reader's worklist: exams of the given queues, by SLA due time, then priority, then arrival.
struct WorklistQuery {
  std::vector<std::string> queues;      //!< required (the queues the caller serves)
  std::vector<ExamState> states;        //!< empty: ROUTED, CLAIMED, PRELIMINARY
  std::vector<std::string> exam_types;  //!< empty: any
  std::vector<Priority> priorities;     //!< empty: any
  //! Empty: any patient; else part of the patient's name (with or without the DICOM '^' and
  //! '=' separators, ASCII letters in any case) or the exact patient ID.
  std::string patient;
  int32_t limit = 100;
  std::string after;  //!< cursor from a previous page
};

struct WorklistEntry {
  ExamRecord exam;
  std::optional<ClaimRecord> claim;  //!< the live claim, if any
};

struct WorklistPage {
  std::vector<WorklistEntry> entries;
  std::string next_cursor;  //!< empty when there is no further page
};

//! Moving an exam to another queue (a consultation at the next level).
struct Escalation {
  std::string exam_id;
  std::string to_queue;
  absl::Time claim_due_at = absl::InfiniteFuture();  //!< in the new queue
  std::string actor;  //!< the reader, or "system" for an automatic escalation
  std::string reason;
  bool require_claim = true;  //!< a reader escalates an exam they hold; the system need not
};

//! What a claim operation should do. kAmend claims a FINAL exam again so that a reader of its
//! desk may write an addendum (the exam stays FINAL; the CLAIMED event says "for amendment").
enum class ClaimAction { kClaim, kRenew, kAmend };

//! One stored report version.
struct ReportRecord {
  int64_t seq = 0;  //!< feed cursor
  std::string report_id;
  std::string exam_id;
  std::string origin_institution;
  int32_t version = 0;
  ReportStatus status = ReportStatus::kUnspecified;
  bool critical = false;
  std::string reader_user;
  std::string reader_institution;
  std::string supersedes;
  std::string content;    //!< serialized rdg.v1.ReportContent
  std::string canonical;  //!< the signed bytes
  SignatureFormat signature_format = SignatureFormat::kUnspecified;
  std::string signature;
  std::string signer_cert_pem;
  absl::Time accepted_at;
  std::optional<absl::Time> acknowledge_by;
  //! SLA target for the clinic's acknowledgement of a FINAL report (starts the final→acknowledged
  //! stage clock; not part of the report itself).
  absl::Time acknowledge_due = absl::InfiniteFuture();
  std::optional<absl::Time> delivered_at;
  std::optional<absl::Time> acknowledged_at;
  std::string acknowledged_by;
};

//! A record of `action` by a caller; seq and the two links are filled in by the store.
inline AuditRecord AuditOf(absl::Time at, std::string institution, std::string user, Role role,
                           std::string action, std::string exam_id = {}, std::string detail = {}) {
  AuditRecord r;
  r.at = at;
  r.institution = std::move(institution);
  r.user = std::move(user);
  r.role = role;
  r.action = std::move(action);
  r.exam_id = std::move(exam_id);
  r.detail = std::move(detail);
  return r;
}

//! A signed checkpoint of the audit chain: the link of record `seq`, signed by the gateway.
struct AuditCheckpointRecord {
  int64_t seq = 0;
  std::string hash;  //!< 32 bytes
  absl::Time signed_at;
  std::string statement;  //!< RDG-AUDIT-CHECKPOINT-V1 text, what was signed
  std::string signature;  //!< DER CMS, detached, by the gateway's certificate
};

//! The end of the audit chain as the store linked it, and its last checkpoint.
struct AuditTipRecord {
  int64_t seq = 0;   //!< the last record the store linked (0: the log is empty)
  std::string hash;  //!< that record's link
  //! The largest seq in the table now: not `seq` when the table was changed behind the store.
  int64_t table_last_seq = 0;
  int64_t checkpointed_seq = 0;      //!< the last checkpoint's record (0: none)
  std::string checkpoint_statement;  //!< and its statement, which the next one names
};

//! A page of the audit chain in seq order, for verification: records from `from_seq`, and the
//! checkpoints of the records in the page.
struct AuditExportRecord {
  std::vector<AuditRecord> records;
  std::vector<AuditCheckpointRecord> checkpoints;
};

//! One reading queue as administrators watch it: its open exams (routed, claimed, preliminary).
struct QueueFigureRecord {
  std::string queue;
  int64_t depth = 0;    //!< open exams
  int64_t claimed = 0;  //!< of those, being read (claimed or with a preliminary report)
  std::optional<absl::Time> oldest_waiting_since;  //!< the unclaimed exam waiting longest
  int64_t overdue = 0;                             //!< open exams past their SLA due time
};

//! One SLA stage clock of an exam (rdg.v1.Stage), running or completed. Grouping attributes are
//! those of the exam when the stage started (queue: where it was when it ended).
struct StageRecord {
  std::string exam_id;
  Stage stage = Stage::kUnspecified;
  std::string origin_institution;
  std::string queue;
  std::string exam_type;
  Priority priority = Priority::kRoutine;
  std::string reviewing_institution;  //!< the reader's institution that completed it
  absl::Time started_at;
  absl::Time due_at = absl::InfiniteFuture();  //!< no SLA target: InfiniteFuture
  std::optional<absl::Time> ended_at;          //!< unset while the stage runs
  std::optional<absl::Time> breached_at;       //!< when a breach was detected
  int64_t end_seq = 0;                         //!< completion order (0 while running)

  //! Completed by its due time (a stage without a target always is).
  bool WithinTarget() const { return ended_at && *ended_at <= due_at; }
  //! How far past due it ended, or is at `now` while running (zero if not late).
  absl::Duration Overrun(absl::Time now) const {
    if (due_at == absl::InfiniteFuture()) return absl::ZeroDuration();
    return std::max(absl::ZeroDuration(), ended_at.value_or(now) - due_at);
  }
};

struct BreachQuery {
  bool open_only = false;                   //!< only stages still running past due
  absl::Time since = absl::InfinitePast();  //!< detected at or after (ignored for open_only)
  int32_t limit = 1000;
};

//! Open breaches of one stage (stages still running past due).
struct OpenBreachCount {
  Stage stage = Stage::kUnspecified;
  int64_t open = 0;
};

//! Something the patient-identity rules refused to link or merge (rdg.v1.IdentityConflict).
struct IdentityConflictRecord {
  int64_t seq = 0;
  absl::Time detected_at;
  IdentityConflictKind kind = IdentityConflictKind::kUnspecified;
  std::string exam_id;
  std::string origin_institution;
  std::string other_exam_id;  //!< empty when there is no second exam
  std::string other_institution;
  std::vector<std::string> fields;  //!< what disagrees ("name", "sex", …)
  std::string detail;               //!< never patient data
};

struct AuditQuery {
  std::string exam_id;
  std::string user;
  std::string action;  //!< empty: any
  absl::Time since = absl::InfinitePast();
  int32_t limit = 100;
};

}  // namespace rdg::storage
