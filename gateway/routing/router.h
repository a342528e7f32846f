// Routing: which reading queue an exam goes to, decided once when its first object is committed
// (in the same index transaction that acknowledges it). Rules are tried in config order and the
// first match wins; an exam no rule matches goes to the configured fallback queue (and is counted).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "rdg/v1/admin.pb.h"
#include "rdg/v1/config.pb.h"

namespace rdg::routing {

struct RoutingInput {
  std::string origin_institution;
  std::string exam_type;  //!< modality: CT, DX, US, ECG, LAB, …
  std::string body_part;  //!< DICOM (0018,0015), may be empty
  rdg::v1::Priority requested_priority = rdg::v1::PRIORITY_UNSPECIFIED;  //!< set by the clinic
};

struct RoutingDecision {
  std::string queue;
  rdg::v1::Priority priority = rdg::v1::ROUTINE;
  std::string rule;  //!< name of the matching rule; empty for the fallback
  bool fallback = false;
};

class Router {
 public:
  //! `config` must have passed validation (rules name existing queues and institutions).
  explicit Router(const rdg::v1::GatewayConfig& config);

  RoutingDecision Route(const RoutingInput& input) const;
  //! Exams sent to the fallback queue since start-up.
  int64_t fallback_count() const { return fallbacks_.load(); }

 private:
  struct Rule {
    std::string name;
    absl::flat_hash_set<std::string> origins, communities, exam_types, body_parts;
    absl::flat_hash_set<int> priorities;
    std::string queue;
    rdg::v1::Priority default_priority;
  };
  std::vector<Rule> rules_;
  absl::flat_hash_map<std::string, std::string> community_of_;  //!< institution → community
  std::string fallback_queue_;
  mutable std::atomic<int64_t> fallbacks_{0};
};

//! SLA targets by exam type × priority: an exact exam type beats "*".
class SlaTable {
 public:
  explicit SlaTable(const rdg::v1::GatewayConfig& config);
  //! The policy for an exam, or nullptr when none applies.
  const rdg::v1::SlaPolicy* Find(const std::string& exam_type, rdg::v1::Priority priority) const;
  //! The stage's target in minutes (0: none). CRITICAL_ACKNOWLEDGEMENT defaults to 60 minutes:
  //! a critical result is never left without a deadline.
  int32_t TargetMinutes(rdg::v1::Stage stage, const std::string& exam_type,
                        rdg::v1::Priority priority) const;
  //! When a stage started at `from` is due, or InfiniteFuture when it has no target.
  absl::Time Due(rdg::v1::Stage stage, const std::string& exam_type, rdg::v1::Priority priority,
                 absl::Time from) const;
  //! When the final report is due (received + received_to_final), or InfiniteFuture.
  absl::Time FinalDue(const std::string& exam_type, rdg::v1::Priority priority,
                      absl::Time received) const;
  //! When the exam must be claimed (since `from`: receipt or escalation), or InfiniteFuture.
  absl::Time ClaimDue(const std::string& exam_type, rdg::v1::Priority priority,
                      absl::Time from) const;

 private:
  std::vector<rdg::v1::SlaPolicy> policies_;
};

}  // namespace rdg::routing
