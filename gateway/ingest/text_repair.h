// The start-up repair of exam text that an index written before schema version 11 holds in the
// objects' own character sets (GB18030, Latin-1, ISO 2022 …): each such exam's first object is
// parsed again — now decoded to UTF-8 — and the exam's text replaced. Runs once (a row of
// pending_repairs names it), before the gateway serves.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "storage/exam_text_repairs.h"
#include "storage/parsing/object_parser.h"

namespace rdg::ingest {

//! The name of the repair in pending_repairs (migration 0011_text_as_utf8.sql).
inline constexpr char kExamTextRepair[] = "exam_text_utf8";

struct TextRepairReport {
  int examined = 0;    //!< exams looked at
  int reparsed = 0;    //!< exams whose text was read again from their first object
  int unreadable = 0;  //!< exams left as they were: their object could not be read again
};

//! Reads again the text of every exam that has a non-ASCII byte or ESC in it (all such rows were
//! written in the device's character set), then marks the repair done; a no-op when it
//! was done before. `blob_path` names the file of a stored blob (by SHA-256, hex).
absl::StatusOr<TextRepairReport> RepairExamText(
    storage::ExamTextRepairs& store, const parsing::ObjectParser& parser,
    const std::function<std::string(const std::string& sha256_hex)>& blob_path);

}  // namespace rdg::ingest
