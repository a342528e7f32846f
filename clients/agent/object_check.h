// What a received object must pass before the agent tells the device it is stored: the size the
// gateway accepts and the gateway's own parser, run in rdg-parser processes with the same limits
// as on the gateway (a file that crashes or hangs the parser costs only that file). A device
// deletes what it was told is stored, so only an object the gateway's checks accept is
// acknowledged; anything else is refused to the device with the reason, and nothing is queued.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rdg/v1/agent_config.pb.h"
#include "rdg/v1/ingest.pb.h"
#include "storage/parsing/object_parser.h"

namespace rdg::agent {

class ObjectCheck {
 public:
  //! Starts the parser processes `config.parsing` describes (rdg-parser beside rdg-clinic by
  //! default); fails clearly if they cannot run.
  static absl::StatusOr<std::unique_ptr<ObjectCheck>> Start(const rdg::v1::AgentChecks& config);
  //! With any parser (unit tests: in-process).
  ObjectCheck(std::unique_ptr<parsing::ObjectParser> parser, int64_t max_object_bytes)
      : configured_max_object_bytes_(max_object_bytes),
        max_object_bytes_(max_object_bytes),
        parser_(std::move(parser)) {}

  //! Takes the gateway's own limits (IngestService.GetIngestLimits): the smaller object size
  //! and the gateway's lab message size apply at once; when the gateway parses with another
  //! nesting or element limit, new parser processes with the gateway's values replace the
  //! running ones (checks in progress finish on the old ones). Returns what changed, for the
  //! log ("" when nothing did).
  absl::StatusOr<std::string> Adopt(const rdg::v1::IngestLimits& gateway);

  //! The parsed object in `path`, or why it cannot be accepted:
  //! - INVALID_ARGUMENT: never acceptable (not DICOM, malformed, an invalid ECG, a parser crash);
  //!   for a lab message it carries the AE/AR acknowledgement (parsing::AttachAck);
  //! - RESOURCE_EXHAUSTED: larger than the gateway accepts;
  //! - UNAVAILABLE: the check could not run now (parsers busy or restarting, or no answer in
  //!   time on a loaded machine although the CPU limit was not reached): try again.
  absl::StatusOr<parsing::ParsedObject> Check(rdg::v1::ObjectKind kind, const std::string& path,
                                              absl::Time now,
                                              const std::string& ack_control_id) const;

 private:
  const int64_t configured_max_object_bytes_;
  std::atomic<int64_t> max_object_bytes_;
  std::atomic<int64_t> max_lab_message_bytes_{0};  //!< 0: the gateway has not said
  mutable absl::Mutex mu_;
  std::shared_ptr<parsing::ObjectParser> parser_ ABSL_GUARDED_BY(mu_);
  //! The parser processes' settings, when Start() made them (Adopt restarts them).
  std::optional<rdg::v1::ParserConfig> parsing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdg::agent
