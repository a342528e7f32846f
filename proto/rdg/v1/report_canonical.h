// The canonical bytes of a report: exactly what a reader signs and anyone verifies. Part of the
// public API contract (README "Canonical report bytes"), so it lives beside the .proto files and
// both the gateway and the clients use this one implementation.
#pragma once

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

}  // namespace rdg::v1
