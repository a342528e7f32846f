// HL7 v2 (2.3 – 2.5.1) ORU^R01 lab result messages: parsing, validation and the ACK a lab system
// expects. Hand-written: Debian packages no C++ HL7 v2 library (python3-hl7 is Python only).
// Text comes out as UTF-8 whatever MSH-18 declared (GB18030, GBK, ISO 8859-1, UTF-8, ASCII), with
// HL7 escape sequences (\F\ \S\ \T\ \R\ \E\, \Xhh..\) decoded. Patient fields are PHI: never log
// them, and no rejection reason contains them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/formats/patient_identifiers.h"

namespace rdg::formats {

//! One OBX segment and the NTE segments that follow it.
struct LabObservation {
  int set_id = 0;             //!< OBX-1 (0 when absent)
  std::string value_type;     //!< OBX-2: NM, ST, TX, CE, CWE, SN, ...
  std::string code;           //!< OBX-3.1 identifier, e.g. "2823-3" or "K"
  std::string code_text;      //!< OBX-3.2, e.g. "Potassium"
  std::string coding_system;  //!< OBX-3.3, e.g. "LN"
  std::string sub_id;         //!< OBX-4
  //! OBX-5 for display: NM/ST/TX as text; CE/CWE "text (code)" or the one present; SN
  //! "comparator number" / "n1-n2" / "n1:n2"; repetitions joined with "; ".
  std::string value;
  //! OBX-5 as a number: NM, or SN with comparator empty or "=" and one number. Unset otherwise.
  std::optional<double> numeric;
  std::string units;                        //!< OBX-6.1 (OBX-6.2 when .1 is empty)
  std::string reference_range;              //!< OBX-7
  std::vector<std::string> abnormal_flags;  //!< OBX-8 repetitions: "H", "HH", "LL", "AA", ...
  std::string result_status;                //!< OBX-11: F, P, C, ...
  std::string observed_at;                  //!< OBX-14 as received (TS), may be empty
  std::vector<std::string> notes;           //!< NTE-3 of the NTE segments after this OBX
};

//! One order: an OBR segment (with the ORC before it, if any), its notes and observations.
struct LabOrder {
  std::string placer_order_number;  //!< OBR-2 (ORC-2 when OBR-2 is empty)
  std::string filler_order_number;  //!< OBR-3 (ORC-3 when OBR-3 is empty)
  std::string service_code;         //!< OBR-4.1
  std::string service_text;         //!< OBR-4.2
  std::string observed_at;          //!< OBR-7 as received (TS)
  std::string result_status;        //!< OBR-25
  std::vector<std::string> notes;   //!< NTE-3 of NTE segments between OBR and its first OBX
  std::vector<LabObservation> observations;
};

//! MSH fields: enough to answer with an ACK even when the rest of the message is rejected.
struct Hl7Header {
  char field_separator = '|';
  std::string encoding_characters = "^~\\&";
  std::string sending_application;    //!< MSH-3 (as received, all components)
  std::string sending_facility;       //!< MSH-4
  std::string receiving_application;  //!< MSH-5
  std::string receiving_facility;     //!< MSH-6
  std::string message_time;           //!< MSH-7
  std::string message_type;           //!< MSH-9, e.g. "ORU^R01" or "ORU^R01^ORU_R01"
  std::string control_id;             //!< MSH-10
  std::string processing_id;          //!< MSH-11
  std::string version;                //!< MSH-12.1
  std::string charset;                //!< MSH-18 as received ("" = ASCII)
};

//! A parsed, valid ORU^R01.
struct LabMessage {
  Hl7Header header;
  // Patient (PID) — PHI.
  //! PID-3 repetitions (ID, CX.4 assigning authority, CX.5 type), then PID-2 and PID-19.
  std::vector<PatientIdentifier> patient_identifiers;
  std::string patient_id_issuer;  //!< the first identifier's assigning authority
  std::string patient_id;         //!< first PID-3 ID (PID-2 if PID-3 is empty)
  std::string patient_name;       //!< PID-5 first repetition, components joined with '^'
  std::string birth_date;         //!< PID-7, first 8 characters (YYYYMMDD)
  std::string sex;                //!< PID-8
  // Visit (PV1), optional.
  std::string patient_class;     //!< PV1-2
  std::string visit_number;      //!< PV1-19
  std::vector<LabOrder> orders;  //!< at least one
};

//! MSA-1 codes.
enum class Hl7AckCode { kAccept, kError, kReject };  // AA, AE, AR
absl::string_view Hl7AckCodeName(Hl7AckCode code);

//! Why a message was not accepted: the ACK's MSA-1, ERR contents and a reason for people.
struct Hl7Rejection {
  Hl7AckCode code = Hl7AckCode::kError;  //!< AR: cannot/will not process (no MSH, bad separator,
                                         //!< not ORU^R01, unsupported version or charset);
                                         //!< AE: a content error (segment order, required field)
  std::string error_code;                //!< HL7 table 0357: "100" segment sequence error, "101"
                                         //!< required field missing, "102" data type error,
                                         //!< "200" unsupported message type, "201" event code,
                                         //!< "203" version, "207" application internal error
  std::string location;                  //!< ERR location, e.g. "OBX^1^5" (segment^seq^field)
  std::string reason;                    //!< English, no PHI, e.g. "OBX segment before any OBR"
};

//! What parsing one message gives: the header whenever MSH could be read, and either the
//! message or the rejection.
struct LabParseOutcome {
  std::optional<Hl7Header> header;
  std::optional<LabMessage> message;
  std::optional<Hl7Rejection> rejection;
};

//! Parses and validates one ORU^R01 message. Segment ends may be "\r", "\n" or "\r\n"; an MLLP
//! frame (0x0B … 0x1C 0x0D) around the message is removed. Accepts versions 2.3, 2.3.1, 2.4,
//! 2.5 and 2.5.1, and at most 10,000 segments.
LabParseOutcome ParseLabMessage(absl::string_view bytes);

//! The ACK (MSH, MSA, and ERR when rejected) answering `original` (may be nullopt when even MSH
//! could not be read). Encoded in the original's character set (MSH-18 repeated), segments
//! ended by "\r". `ack_control_id` becomes the ACK's MSH-10.
std::string BuildHl7Ack(const std::optional<Hl7Header>& original, Hl7AckCode code,
                        const Hl7Rejection* rejection, absl::Time now,
                        absl::string_view ack_control_id);

//! The message as its segments joined by CR, MLLP framing, a BOM, the line-end style and blank
//! lines removed: two sendings of one message compare equal in this form (idempotent re-sends).
std::string CanonicalHl7(absl::string_view bytes);

//! Splits a file's contents into messages: into MLLP frames if the data has any, and (inside each
//! frame, or in unframed data) at each line that is an MSH segment. A frame without its end block
//! is one piece, start block included (ParseLabMessage refuses it as cut off). Batch envelope lines
//! (FHS, BHS, BTS, FTS) are dropped, as are empty pieces.
std::vector<std::string> SplitHl7Messages(absl::string_view data);

}  // namespace rdg::formats
