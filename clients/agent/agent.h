// `rdg-clinic agent`: the clinic edge agent. Wires the outbox, the DICOM and HL7 receivers, the
// forwarder and the inbox from one configuration file, runs until SIGTERM/SIGINT and then
// drains: receivers stop accepting and finish what they are receiving, uploads in flight get the
// grace period, and whatever is left stays in the outbox for the next start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rdg::agent {

//! Runs the agent; returns the process exit code. `ready_file`, when set, receives a JSON line
//! {"pid":…, "dicom_port":…, "hl7_port":…} once every listener is up.
int RunAgent(const std::string& config_path, const std::string& ready_file);

//! `rdg-clinic agent status`: outbox depth and bytes, oldest item age, sent figures, the last
//! error — read from the agent's database, so it works whether or not the agent runs.
int RunAgentStatus(const std::string& config_path, bool as_json);

//! What `rdg-clinic agent dead-letters` is asked to do: list (nothing set), retry one or all,
//! or purge one.
struct DeadLetterCommand {
  std::optional<int64_t> retry;
  bool retry_all = false;
  std::optional<int64_t> purge;
};

//! `rdg-clinic agent dead-letters`: lists dead letters (id, time, device, size, reason), or
//! queues them again, or removes one; retries and purges are recorded with the operator's name.
int RunDeadLetters(const std::string& config_path, const DeadLetterCommand& command, bool as_json);

}  // namespace rdg::agent
