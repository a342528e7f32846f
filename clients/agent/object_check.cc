#include "clients/agent/object_check.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "gateway/parsing/isolated_parser.h"

namespace rdg::agent {

absl::StatusOr<std::unique_ptr<ObjectCheck>> ObjectCheck::Start(
    const rdg::v1::AgentChecks& config) {
  auto parser = parsing::StartParserPool(config.parsing());
  if (!parser.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot start the parser processes that check received objects: ",
        parser.status().message(), " (checks.parsing.program names rdg-parser)"));
  }
  return std::make_unique<ObjectCheck>(*std::move(parser), config.max_object_bytes());
}

absl::StatusOr<ingest::ParsedObject> ObjectCheck::Check(rdg::v1::ObjectKind kind,
                                                        const std::string& path, absl::Time now,
                                                        const std::string& ack_control_id) const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot read the received object: ", ec.message()));
  }
  if (size == 0) return absl::InvalidArgumentError("the object is empty");
  if (static_cast<int64_t>(size) > max_object_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the object is ", size, " bytes; the gateway accepts at most ", max_object_bytes_));
  }
  absl::StatusOr<ingest::ParsedObject> parsed =
      parser_->Parse({kind, path, static_cast<int64_t>(size), now, ack_control_id});
  // The parser pool speaks as the gateway's; here it is the agent's check that could not run.
  if (absl::IsUnavailable(parsed.status())) {
    return absl::UnavailableError("the agent could not check the object now; send it again");
  }
  // No answer in time although CPU time was left: a busy clinic computer, not the object.
  if (parsing::OnlyOutOfWallClockTime(parsed.status())) {
    return absl::UnavailableError(
        "the agent's check took too long on this computer; send it again");
  }
  return parsed;
}

}  // namespace rdg::agent
