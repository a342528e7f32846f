#include "gateway/routing/router.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace rdg::routing {
namespace {

//! Modalities and body parts compare case-insensitively (devices differ in what they send).
std::string Key(const std::string& s) { return absl::AsciiStrToUpper(s); }

bool Matches(const absl::flat_hash_set<std::string>& allowed, const std::string& value) {
  return allowed.empty() || allowed.contains(value);
}

}  // namespace

Router::Router(const rdg::v1::GatewayConfig& config) : fallback_queue_(config.fallback_queue()) {
  for (const auto& inst : config.institutions()) community_of_[inst.id()] = inst.community();
  for (const auto& r : config.routing_rules()) {
    Rule rule;
    rule.name = r.name();
    rule.origins.insert(r.origin_institutions().begin(), r.origin_institutions().end());
    rule.communities.insert(r.origin_communities().begin(), r.origin_communities().end());
    for (const auto& t : r.exam_types()) rule.exam_types.insert(Key(t));
    for (const auto& b : r.body_parts()) rule.body_parts.insert(Key(b));
    for (int p : r.priorities()) rule.priorities.insert(p);
    rule.queue = r.queue();
    rule.default_priority = r.default_priority();
    rules_.push_back(std::move(rule));
  }
}

RoutingDecision Router::Route(const RoutingInput& in) const {
  auto community = community_of_.find(in.origin_institution);
  const std::string origin_community = community == community_of_.end() ? "" : community->second;
  const std::string type = Key(in.exam_type), body = Key(in.body_part);
  RoutingDecision d;
  for (const Rule& rule : rules_) {
    if (!Matches(rule.origins, in.origin_institution) ||
        !Matches(rule.communities, origin_community) || !Matches(rule.exam_types, type) ||
        !Matches(rule.body_parts, body) ||
        !(rule.priorities.empty() || rule.priorities.contains(in.requested_priority))) {
      continue;
    }
    d.queue = rule.queue;
    d.rule = rule.name;
    d.priority = in.requested_priority != rdg::v1::PRIORITY_UNSPECIFIED   ? in.requested_priority
                 : rule.default_priority != rdg::v1::PRIORITY_UNSPECIFIED ? rule.default_priority
                                                                          : rdg::v1::ROUTINE;
    return d;
  }
  fallbacks_.fetch_add(1);
  d.queue = fallback_queue_;
  d.fallback = true;
  d.priority = in.requested_priority != rdg::v1::PRIORITY_UNSPECIFIED ? in.requested_priority
                                                                      : rdg::v1::ROUTINE;
  return d;
}

SlaTable::SlaTable(const rdg::v1::GatewayConfig& config)
    : policies_(config.sla_policies().begin(), config.sla_policies().end()) {}

const rdg::v1::SlaPolicy* SlaTable::Find(const std::string& exam_type,
                                         rdg::v1::Priority priority) const {
  const rdg::v1::SlaPolicy* wildcard = nullptr;
  const std::string type = Key(exam_type);
  for (const auto& p : policies_) {
    if (p.priority() != priority) continue;
    if (Key(p.exam_type()) == type) return &p;
    if (p.exam_type() == "*" && wildcard == nullptr) wildcard = &p;
  }
  return wildcard;
}

int32_t SlaTable::TargetMinutes(rdg::v1::Stage stage, const std::string& exam_type,
                                rdg::v1::Priority priority) const {
  const auto* p = Find(exam_type, priority);
  switch (stage) {
    case rdg::v1::RECEIVED_TO_CLAIMED:
      return p ? std::max(0, p->received_to_claimed_minutes()) : 0;
    case rdg::v1::RECEIVED_TO_FINAL:
      return p ? std::max(0, p->received_to_final_minutes()) : 0;
    case rdg::v1::FINAL_TO_ACKNOWLEDGED:
      return p ? std::max(0, p->final_to_acknowledged_minutes()) : 0;
    case rdg::v1::CRITICAL_ACKNOWLEDGEMENT:
      return p && p->critical_acknowledgement_minutes() > 0 ? p->critical_acknowledgement_minutes()
                                                            : 60;
    default:
      return 0;
  }
}

absl::Time SlaTable::Due(rdg::v1::Stage stage, const std::string& exam_type,
                         rdg::v1::Priority priority, absl::Time from) const {
  const int32_t minutes = TargetMinutes(stage, exam_type, priority);
  return minutes > 0 ? from + absl::Minutes(minutes) : absl::InfiniteFuture();
}

absl::Time SlaTable::FinalDue(const std::string& exam_type, rdg::v1::Priority priority,
                              absl::Time received) const {
  return Due(rdg::v1::RECEIVED_TO_FINAL, exam_type, priority, received);
}

absl::Time SlaTable::ClaimDue(const std::string& exam_type, rdg::v1::Priority priority,
                              absl::Time from) const {
  return Due(rdg::v1::RECEIVED_TO_CLAIMED, exam_type, priority, from);
}

}  // namespace rdg::routing
