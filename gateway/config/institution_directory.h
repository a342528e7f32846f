// Read-only lookup of the configured institutions and queues, built once from the validated
// config, with the names people read in place of ids.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "rdg/v1/config.pb.h"

namespace rdg::config {

class InstitutionDirectory {
 public:
  explicit InstitutionDirectory(const rdg::v1::GatewayConfig& config) {
    for (const auto& inst : config.institutions()) {
      by_id_.emplace(inst.id(), inst);
      for (const auto& m : inst.staff()) names_.emplace(inst.id() + '\n' + m.user(), m.name());
    }
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

  //! The DICOM person name ("Wang^Jianguo=王^建国") of `user` of `institution` from its staff,
  //! or "" when it is not configured.
  std::string PersonName(const std::string& institution, const std::string& user) const {
    auto it = names_.find(institution + '\n' + user);
    return it == names_.end() ? std::string() : it->second;
  }

  //! The person's name as people read it: the ideographic group when there is one ("王建国"),
  //! else the alphabetic one ("Wang Jianguo"); the user name itself when no name is configured.
  std::string DisplayName(const std::string& institution, const std::string& user) const {
    const std::string pn = PersonName(institution, user);
    const std::vector<std::string> groups = absl::StrSplit(pn, '=');
    const bool ideographic = groups.size() > 1 && !groups[1].empty();
    std::string out =
        absl::StrJoin(absl::StrSplit(groups[ideographic ? 1 : 0], '^', absl::SkipEmpty()),
                      ideographic ? "" : " ");
    return out.empty() ? user : out;
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
  absl::flat_hash_map<std::string, std::string> names_;  //!< institution '\n' user → PN
};

}  // namespace rdg::config
