#include "clients/agent/object_check.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "storage/parsing/isolated_parser.h"

namespace rdg::agent {

absl::StatusOr<std::unique_ptr<ObjectCheck>> ObjectCheck::Start(
    const rdg::v1::AgentChecks& config) {
  auto parser = parsing::StartParserPool(config.parsing());
  if (!parser.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start the parser processes that check received objects: ",
                     parser.status().message(), " (checks.parsing.program names rdg-parser)"));
  }
  auto check = std::make_unique<ObjectCheck>(*std::move(parser), config.max_object_bytes());
  absl::MutexLock lock(&check->mu_);
  check->parsing_ = config.parsing();
  return check;
}

absl::StatusOr<std::string> ObjectCheck::Adopt(const rdg::v1::IngestLimits& gateway) {
  std::string changed;
  auto note = [&changed](auto&&... parts) {
    absl::StrAppend(&changed, changed.empty() ? "" : "; ", parts...);
  };
  if (gateway.max_object_bytes() > 0) {
    const int64_t size = std::min(configured_max_object_bytes_, gateway.max_object_bytes());
    if (max_object_bytes_.exchange(size) != size) note("objects up to ", size, " bytes");
  }
  if (gateway.max_lab_message_bytes() > 0 &&
      max_lab_message_bytes_.exchange(gateway.max_lab_message_bytes()) !=
          gateway.max_lab_message_bytes()) {
    note("lab messages up to ", gateway.max_lab_message_bytes(), " bytes");
  }
  rdg::v1::ParserConfig wanted;
  {
    absl::MutexLock lock(&mu_);
    if (!parsing_.has_value()) return changed;  // a parser given by the caller: sizes only
    wanted = *parsing_;
    if (gateway.max_sequence_depth() > 0) {
      wanted.set_max_sequence_depth(gateway.max_sequence_depth());
    }
    if (gateway.max_elements() > 0) wanted.set_max_elements(gateway.max_elements());
    if (wanted.max_sequence_depth() == parsing_->max_sequence_depth() &&
        wanted.max_elements() == parsing_->max_elements()) {
      return changed;
    }
  }
  // Started without the lock: checks go on with the running processes meanwhile. (Adopt is
  // called from one thread, GatewayLimits', so two restarts never race.)
  auto parser = parsing::StartParserPool(wanted);
  if (!parser.ok()) {
    return absl::Status(parser.status().code(),
                        absl::StrCat("cannot restart the parser processes with the gateway's "
                                     "limits: ",
                                     parser.status().message()));
  }
  absl::MutexLock lock(&mu_);
  parser_ = *std::move(parser);
  parsing_ = wanted;
  note("parsing nesting up to ", wanted.max_sequence_depth(), " levels and ", wanted.max_elements(),
       " elements");
  return changed;
}

absl::StatusOr<parsing::ParsedObject> ObjectCheck::Check(rdg::v1::ObjectKind kind,
                                                         const std::string& path, absl::Time now,
                                                         const std::string& ack_control_id) const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot read the received object: ", ec.message()));
  }
  if (size == 0) return absl::InvalidArgumentError("the object is empty");
  int64_t limit = max_object_bytes_.load();
  if (const int64_t lab = max_lab_message_bytes_.load(); kind == rdg::v1::HL7V2_LAB && lab > 0) {
    limit = std::min(limit, lab);
  }
  if (static_cast<int64_t>(size) > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the object is ", size, " bytes; the gateway accepts at most ", limit));
  }
  std::shared_ptr<parsing::ObjectParser> parser;
  {
    absl::MutexLock lock(&mu_);
    parser = parser_;
  }
  absl::StatusOr<parsing::ParsedObject> parsed =
      parser->Parse({kind, path, static_cast<int64_t>(size), now, ack_control_id});
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
