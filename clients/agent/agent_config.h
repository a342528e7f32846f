// Loading and checking the edge agent's configuration (proto/rdg/v1/agent_config.proto): protobuf
// text format, syntax errors with their line, then the semantic checks and defaults.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "rdg/v1/agent_config.pb.h"

namespace rdg::agent {

//! Reads, checks and completes (defaults) the configuration file at `path`. Relative paths in it
//! are taken relative to the file's folder.
absl::StatusOr<rdg::v1::AgentConfig> LoadAgentConfig(const std::string& path);

//! The storage SOP classes the DICOM listener accepts by default, as (name, UID).
const std::vector<std::pair<std::string, std::string>>& KnownStorageSopClasses();

//! The UID a configured SOP class entry (name or UID) stands for, or "" if unknown.
std::string SopClassUid(const std::string& name_or_uid);

}  // namespace rdg::agent
