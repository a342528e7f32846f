// Read-only lookup of the configured institutions, built once from the validated config.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "rdg/v1/config.pb.h"

namespace rdg::config {

class InstitutionDirectory {
 public:
  explicit InstitutionDirectory(const rdg::v1::GatewayConfig& config) {
    for (const auto& inst : config.institutions()) by_id_.emplace(inst.id(), inst);
  }
  //! The institution with this id, or nullptr.
  const rdg::v1::Institution* Find(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
  }

 private:
  absl::flat_hash_map<std::string, rdg::v1::Institution> by_id_;
};

}  // namespace rdg::config
