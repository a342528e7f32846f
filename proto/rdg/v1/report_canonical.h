// The canonical bytes of a report: exactly what a reader signs and anyone verifies. Part of the
// public API contract (README "Canonical report bytes"), so it lives beside the .proto files and
// both the gateway and the clients use this one implementation.
#pragma once

#include <cstdint>
#include <string>

#include "rdg/v1/reading.pb.h"

namespace rdg::v1 {

//! UTF-8 text, one "key: value" line per field in a fixed order, LF line ends:
//!
//!   RDG-REPORT-V1
//!   exam_id: …
//!   status: PRELIMINARY_REPORT | FINAL_REPORT | AMENDED_REPORT
//!   reader_user: …
//!   reader_institution: …
//!   signed_at: 2026-11-22T08:59:00Z      (RFC 3339, UTC, whole seconds)
//!   critical: true | false
//!   supersedes: …                        (report id of the amended version, or empty)
//!   findings: …
//!   impression: …
//!   amendment_reason: …                  (addenda only)
//!   desk: …                              (only when the reader's institution has desks)
//!
//! In values a backslash is written "\\", a line feed "\n" and a carriage return "\r", so every
//! field stays on its line. Nothing else is transformed.
std::string CanonicalReportBytes(const ReportContent& content);

//! What the gateway vouches for when it hands a signed report to its clinic, beyond the reader's
//! own signature: which report, for which exam of which clinic, read at which desk (checked
//! against the gateway's desk configuration when the report was accepted), accepted when, over
//! exactly which canonical bytes. The gateway signs these bytes with its own key (a DER CMS
//! detached signature, its certificate embedded: DeliveredReport.receipt / receipt_signature);
//! offline verifiers take the exam and the receipt time from here, never from unsigned files.
struct ReportReceipt {
  std::string report_id;
  int32_t version = 0;
  std::string exam_id;
  std::string origin_institution;
  std::string reader_user;
  std::string reader_institution;
  std::string desk;
  int64_t accepted_at_unix = 0;  //!< whole seconds (the report's accepted_at, truncated)
  int64_t issued_at_unix = 0;    //!< when this receipt was made
  std::string report_sha256;     //!< lower-case hex of the canonical bytes
};

//! The receipt as text, escaped like the canonical bytes, LF line ends:
//!
//!   RDG-RECEIPT-V1
//!   report_id: …
//!   version: 2
//!   exam_id: …
//!   origin_institution: …
//!   reader_user: …
//!   reader_institution: …
//!   desk: …                              (empty when the reader's institution has no desks)
//!   accepted_at: 2026-11-22T08:59:03Z
//!   issued_at: 2026-11-22T09:10:00Z
//!   report_sha256: …
std::string ReportReceiptBytes(const ReportReceipt& receipt);

}  // namespace rdg::v1
