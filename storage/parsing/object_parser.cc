#include "storage/parsing/object_parser.h"

#include "storage/base/status_macros.h"

namespace rdg::parsing {

absl::StatusOr<ParsedObject> InProcessParser::Parse(const ParseJob& job) const {
  if (job.kind == rdg::v1::HL7V2_LAB) {
    return ParseLabObject(job.path, job.size, critical_, job.now, job.ack_control_id);
  }
  RDG_RETURN_IF_ERROR(formats::CheckDicomStructure(job.path, limits_).status());
  return ParseDicomObject(job.path);
}

}  // namespace rdg::parsing
