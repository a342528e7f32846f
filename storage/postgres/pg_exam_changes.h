// Internal to storage/postgres: what the stores' transactions change about an exam besides their
// own rows — its history (exam_events), its SLA stage clocks (exam_stages) and the end of a
// claim. Every function runs inside the caller's transaction, which holds the exam's row lock
// (LockExam) before it changes the exam's claim or state.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/postgres/pg_connection.h"
#include "storage/records.h"

namespace rdg::storage::pg {

//! The exam, its row locked until the transaction ends; nullopt if there is none.
absl::StatusOr<std::optional<ExamRecord>> LockExam(Connection& conn, const std::string& exam_id);

//! Records a state change of an exam.
absl::Status AddEvent(Connection& conn, const std::string& exam_id, ExamState state, absl::Time at,
                      const std::string& actor, const std::string& detail);

//! Starts a stage of an exam with the exam's grouping attributes (once per exam and stage: an
//! addendum does not restart the acknowledgement clock of the first final report).
absl::Status StartStage(Connection& conn, const std::string& exam_id, Stage stage,
                        absl::Time started_at, absl::Time due_at);
//! Starts a stage again for a new deadline: a completed one is reopened (a critical addendum
//! after the critical FINAL was acknowledged), else a new one; a running one keeps its due.
absl::Status RestartStage(Connection& conn, const std::string& exam_id, Stage stage,
                          absl::Time started_at, absl::Time due_at);
//! Ends a running stage (no-op if it is not running); a late end is recorded as a breach. It
//! gets its number of the stage feed when the feed is next read (no lock held to the commit).
absl::Status EndStage(Connection& conn, const std::string& exam_id, Stage stage, absl::Time at,
                      const std::string& reviewing_institution);
//! The exam's running stages follow it to another queue.
absl::Status MoveRunningStages(Connection& conn, const std::string& exam_id,
                               const std::string& queue);

//! Deletes the exam's claim, returns a CLAIMED exam to ROUTED and records RELEASED.
absl::Status EndClaim(Connection& conn, const std::string& exam_id, absl::Time at,
                      const std::string& actor, const std::string& detail);

}  // namespace rdg::storage::pg
