// Loading and validating the gateway's typed configuration (rdg.v1.GatewayConfig, text format).
// Everything is checked once at start-up; errors name FILE:LINE:COLUMN and the problem.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rdg/v1/config.pb.h"

namespace rdg::config {

//! Command-line overrides applied on top of the file before validation.
struct ConfigOverrides {
  std::string listen;             //!< --listen HOST:PORT
  std::string data_dir;           //!< --data-dir DIR
  std::string monitoring_listen;  //!< --monitoring-listen HOST:PORT
};

//! Parses and validates configuration text; `source` names it in error messages. Fills defaults
//! (limits, worker threads, lease length, index path).
//! The time zone of times shown to people when the configuration names none.
inline constexpr absl::string_view kDefaultTimeZone = "Asia/Shanghai";
//! The name printed at the top of reports when the configuration names none.
inline constexpr absl::string_view kDefaultPlatformName = "远程诊断平台";

//! The configuration's time_zone (validated when parsed; UTC if it cannot be loaded).
absl::TimeZone DisplayTimeZone(const rdg::v1::GatewayConfig& config);

absl::StatusOr<rdg::v1::GatewayConfig> ParseConfig(absl::string_view text, absl::string_view source,
                                                   const ConfigOverrides& overrides = {});

//! Reads `path` and calls ParseConfig.
absl::StatusOr<rdg::v1::GatewayConfig> LoadConfigFile(const std::string& path,
                                                      const ConfigOverrides& overrides = {});

}  // namespace rdg::config
