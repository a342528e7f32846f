// Read-only lookup of the configured institutions and queues, built once from the validated
// config, with the names people read in place of ids.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "rdg/v1/config.pb.h"

namespace rdg::config {

class InstitutionDirectory {
 public:
  explicit InstitutionDirectory(const rdg::v1::GatewayConfig& config) {
    for (const auto& inst : config.institutions()) by_id_.emplace(inst.id(), inst);
    for (const auto& q : config.queues()) queues_.emplace(q.name(), q);
  }
  //! The institution with this id, or nullptr.
  const rdg::v1::Institution* Find(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
  }

  //! The institution's configured name; the id itself when it has none or is unknown. A county
  //! medical community's id is its lead institution's, so this names counties too.
  std::string Name(const std::string& id) const {
    const rdg::v1::Institution* inst = Find(id);
    return inst != nullptr && !inst->name().empty() ? inst->name() : id;
  }

  //! A queue for people: "Qingshui County People's Hospital · imaging"; the queue's own name
  //! when it is not configured.
  std::string QueueName(const std::string& queue) const {
    auto it = queues_.find(queue);
    if (it == queues_.end()) return queue;
    return Name(it->second.institution()) + " · " + it->second.department();
  }

 private:
  absl::flat_hash_map<std::string, rdg::v1::Institution> by_id_;
  absl::flat_hash_map<std::string, rdg::v1::Queue> queues_;
};

}  // namespace rdg::config
