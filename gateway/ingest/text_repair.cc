#include "gateway/ingest/text_repair.h"

#include <glog/logging.h>

#include <filesystem>
#include <system_error>

#include "absl/time/clock.h"
#include "storage/base/status_macros.h"
#include "storage/formats/text.h"
#include "storage/vocabulary_proto.h"

namespace rdg::ingest {
namespace {

//! The exam's text columns, each of which a listing sends as a protobuf `string`.
std::vector<std::string*> TextOf(storage::ExamRecord& e) {
  return {&e.patient.patient_id, &e.patient.name,     &e.patient.sex,
          &e.patient.birth_date, &e.accession_number, &e.body_part,
          &e.study_date,         &e.study_time,       &e.study_description};
}

//! Whether the exam's text may be in a device's character set: any byte outside ASCII, or ESC.
//! Not only invalid UTF-8: GB18030 bytes can also be valid UTF-8 (郑^伟 is D6A3 5E CEB0, "֣^ΰ"),
//! and ISO 2022 IR 87 in its 7-bit form is ASCII with escape sequences.
bool NeedsRepair(storage::ExamRecord& e) {
  for (const std::string* s : TextOf(e)) {
    for (char c : *s) {
      if (static_cast<unsigned char>(c) >= 0x80 || c == '\x1B') return true;
    }
  }
  return false;
}

bool IsValidText(storage::ExamRecord& e) {
  for (const std::string* s : TextOf(e)) {
    if (!formats::IsValidUtf8(*s)) return false;
  }
  return true;
}

//! The exam's text read again from its first object (DICOM only: lab text was always decoded).
absl::StatusOr<storage::ExamRecord> Reparse(const storage::ExamText& t,
                                            const parsing::ObjectParser& parser,
                                            const std::string& path) {
  if (t.first_object.kind != storage::ObjectKind::kDicom) {
    return absl::FailedPreconditionError("not a DICOM object");
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(ec.message());
  parsing::ParseJob job{storage::ToProto(t.first_object.kind), path, static_cast<int64_t>(size),
                        absl::Now(), ""};
  RDG_ASSIGN_OR_RETURN(parsing::ParsedObject parsed, parser.Parse(job));
  storage::ExamRecord text = parsed.exam;
  if (!IsValidText(text)) return absl::InternalError("the parser returned text that is not UTF-8");
  return text;
}

}  // namespace

absl::StatusOr<TextRepairReport> RepairExamText(
    storage::ExamTextRepairs& store, const parsing::ObjectParser& parser,
    const std::function<std::string(const std::string& sha256_hex)>& blob_path) {
  TextRepairReport report;
  RDG_ASSIGN_OR_RETURN(bool pending, store.RepairPending(kExamTextRepair));
  if (!pending) return report;
  constexpr int kPage = 500;
  std::string after;
  for (;;) {
    RDG_ASSIGN_OR_RETURN(std::vector<storage::ExamText> page, store.ListExamText(after, kPage));
    for (storage::ExamText& t : page) {
      ++report.examined;
      if (!NeedsRepair(t.exam)) continue;
      auto text = Reparse(t, parser, blob_path(t.first_object.sha256_hex));
      if (!text.ok()) {
        // The row stays as it is (listings show invalid bytes as U+FFFD): nothing is lost that
        // a later look at the object could still recover. No PHI in the log line.
        LOG(WARNING) << "exam " << t.exam.exam_id << ": text not repaired, its first object "
                     << "could not be read again (" << text.status().message() << ")";
        ++report.unreadable;
        continue;
      }
      ++report.reparsed;
      RDG_RETURN_IF_ERROR(store.RewriteExamText(t.exam.exam_id, *text));
    }
    if (static_cast<int>(page.size()) < kPage) break;
    after = page.back().exam.exam_id;
  }
  RDG_RETURN_IF_ERROR(store.FinishRepair(kExamTextRepair));
  return report;
}

}  // namespace rdg::ingest
