// Internal to storage/: the SQLite connection and statement wrappers and the row readers shared
// by the SqliteIndexStore source files. Not part of the storage interface.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/base/sqlite_db.h"
#include "storage/index/columns.h"
#include "storage/records.h"

namespace rdg::storage {
namespace sqlite_internal {

using sqlite_db::Connection;
using sqlite_db::Stmt;

}  // namespace sqlite_internal

namespace sqlite_internal {

constexpr char kSessionColumns[] =
    "session_id, institution, user, kind, size, sha256, priority, client_ref, created_at, "
    "updated_at";

inline UploadSessionRecord ReadSession(const Stmt& s) {
  UploadSessionRecord r;
  r.session_id = s.Text(0);
  r.institution = s.Text(1);
  r.user = s.Text(2);
  r.kind = static_cast<ObjectKind>(s.Int(3));
  r.size = s.Int(4);
  r.sha256_hex = s.Text(5);
  r.priority = static_cast<Priority>(s.Int(6));
  r.client_ref = s.Text(7);
  r.created_at = s.Time(8);
  r.updated_at = s.Time(9);
  return r;
}

inline ObjectRecord ReadObject(const Stmt& s) {
  ObjectRecord r;
  r.origin_institution = s.Text(0);
  r.exam_id = s.Text(1);
  r.sop_instance_uid = s.Text(2);
  r.series_instance_uid = s.Text(3);
  r.sop_class_uid = s.Text(4);
  r.transfer_syntax_uid = s.Text(5);
  r.modality = s.Text(6);
  r.instance_number = static_cast<int32_t>(s.Int(7));
  r.kind = static_cast<ObjectKind>(s.Int(8));
  r.size = s.Int(9);
  r.sha256_hex = s.Text(10);
  r.received_at = s.Time(11);
  r.content_key = s.Text(12);
  r.text_notes = s.Text(13);
  return r;
}

inline absl::Time ReadDue(int64_t micros) {
  return micros == std::numeric_limits<int64_t>::max() ? absl::InfiniteFuture()
                                                       : absl::FromUnixMicros(micros);
}

inline int64_t DueMicros(absl::Time t) {
  return t == absl::InfiniteFuture() ? std::numeric_limits<int64_t>::max() : absl::ToUnixMicros(t);
}

inline ExamRecord ReadExam(const Stmt& s, int64_t* seq) {
  ExamRecord r;
  if (seq) *seq = s.Int(0);
  r.exam_id = s.Text(1);
  r.origin_institution = s.Text(2);
  r.study_instance_uid = s.Text(3);
  r.patient = {s.Text(4),  s.Text(5),  s.Text(6),
               s.Text(7),  s.Text(8),  s.Text(26),
               s.Text(27), s.Text(28), /*national_id_problem=*/""};
  r.accession_number = s.Text(9);
  r.exam_type = s.Text(10);
  std::string modalities = s.Text(11);
  if (!modalities.empty()) r.modalities = absl::StrSplit(modalities, '\\');
  r.body_part = s.Text(12);
  r.study_date = s.Text(13);
  r.study_time = s.Text(14);
  r.study_description = s.Text(15);
  r.priority = static_cast<Priority>(s.Int(16));
  r.state = static_cast<ExamState>(s.Int(17));
  r.queue = s.Text(18);
  r.instance_count = static_cast<int32_t>(s.Int(19));
  r.total_bytes = s.Int(20);
  r.received_at = s.Time(21);
  r.updated_at = s.Time(22);
  r.sla_due_at = ReadDue(s.Int(23));
  r.claim_due_at = ReadDue(s.Int(24));
  r.critical = s.Int(25) != 0;
  r.escalated_by = s.Text(29);
  r.escalation_reason = s.Text(30);
  return r;
}

}  // namespace sqlite_internal
}  // namespace rdg::storage

namespace rdg::storage::sqlite_internal {

//! A JSON array of strings for `IN (SELECT value FROM json_each(?))` (one static statement for
//! any filter). Values are escaped; they are ids, queue names, modality and test codes.
inline std::string JsonArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += "\"";
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    out += "\"";
  }
  return out + "]";
}

//! Steps `stmt` to the end and returns read(row) for every row.
template <typename Read>
auto CollectRows(Stmt& stmt, Read read) -> absl::StatusOr<std::vector<decltype(read(stmt))>> {
  std::vector<decltype(read(stmt))> rows;
  for (;;) {
    auto more = stmt.Step();
    if (!more.ok()) return more.status();
    if (!*more) return rows;
    rows.push_back(read(stmt));
  }
}

using sqlite_db::InWriteTransaction;

}  // namespace rdg::storage::sqlite_internal
