// Length limits on every field of every request, checked before a call does any work: ids and
// names are short, free text (report findings and impression, an escalation reason) is bounded,
// signatures and certificates are bounded. What was seen without them: a 4 MB request id echoed
// into error messages (the client could not read the answer, the gateway kept 300 MB), a 4 MB
// escalation reason stored and returned by every later GetExam, a 4 MB audit filter written into
// the append-only log.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace rdg::api {

//! Ids, names, cursors, filters: every string field not listed below. (Ids are echoed in error
//! messages, so this bounds those too.)
inline constexpr size_t kMaxIdBytes = 256;
//! Report findings and impression.
inline constexpr size_t kMaxReportTextBytes = 64 * 1024;
//! A report's canonical bytes: findings and impression (escaped, so up to twice their size)
//! and the header lines.
inline constexpr size_t kMaxCanonicalReportBytes = 4 * kMaxReportTextBytes + 16 * 1024;
//! An escalation reason.
inline constexpr size_t kMaxReasonBytes = 4 * 1024;
//! A detached signature or a signer's certificate chain (bytes fields; upload data is bounded by
//! limits.max_chunk_bytes instead).
inline constexpr size_t kMaxSignatureBytes = 64 * 1024;
//! Entries of one repeated field (filters such as modalities).
inline constexpr int kMaxRepeated = 64;

//! INVALID_ARGUMENT naming the first field of `request` (at any depth) over its limit; the
//! message never quotes the value.
absl::Status CheckRequestLimits(const google::protobuf::Message& request);

}  // namespace rdg::api
