// Operators' tools on the edge agent's dead letters (`rdg-clinic agent dead-letters`): list them,
// queue them again once the cause is fixed, or remove one for good. They work on the agent's
// data dir through agent.db, also while the agent runs (its forwarder picks a re-queued item up
// within a second). Every retry and purge is recorded in agent.db's operator_actions with who
// did it; nothing here reads or prints patient data (labels are SOP Instance UIDs or HL7
// message control IDs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rdg/v1/common.pb.h"

namespace rdg::agent {

struct DeadLetter {
  int64_t id = 0;
  rdg::v1::ObjectKind kind = rdg::v1::DICOM;
  std::string source;  //!< "dicom CALLING_AE" or "hl7 PEER"
  std::string label;   //!< SOP Instance UID or HL7 message control ID
  int64_t size = 0;
  absl::Time received_at;
  std::optional<absl::Time> dead_at;
  int attempts = 0;
  std::string reason;  //!< why it is here (the gateway's answer, or the quarantine)
  std::string file;    //!< the object, in DATA/dead-letter
};

//! An operator's action as recorded in agent.db.
struct OperatorAction {
  absl::Time at;
  std::string actor;
  std::string action;  //!< "retry" or "purge"
  int64_t item = 0;
  std::string detail;
};

//! Every dead letter of the agent whose data dir is `data_dir`, oldest first.
absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(const std::string& data_dir);

//! Queues dead letters again: `id`, or every one when `id` is empty. The file is sent from the
//! dead-letter folder and removed once the gateway stored it; the quarantine count starts over.
//! Returns the ids queued. NOT_FOUND when `id` is not a dead letter.
absl::StatusOr<std::vector<int64_t>> RetryDeadLetters(const std::string& data_dir,
                                                      std::optional<int64_t> id,
                                                      const std::string& actor, absl::Time now);

//! Removes dead letter `id` (its file and reason) for good; the outbox row goes too and the
//! purge is recorded with the object's size and SHA-256. NOT_FOUND when it is not a dead letter.
absl::Status PurgeDeadLetter(const std::string& data_dir, int64_t id, const std::string& actor,
                             absl::Time now);

//! The most recent operator actions, newest first.
absl::StatusOr<std::vector<OperatorAction>> RecentOperatorActions(const std::string& data_dir,
                                                                  int limit);

//! Who runs this process, for the record: the login name, with the sudo caller when there is one
//! ("root (sudo by wang)").
std::string CurrentOperator();

}  // namespace rdg::agent
