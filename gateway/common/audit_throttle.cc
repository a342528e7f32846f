#include "gateway/common/audit_throttle.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace rdg {

std::optional<int64_t> AuditThrottle::Admit(const std::string& key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key);
  if (it != keys_.end() && now - it->second.written < window_) {
    ++it->second.left_out;
    return std::nullopt;
  }
  if (it == keys_.end()) {
    // Forget everyone once the table is full (an attacker with many addresses gets one record
    // per address per window anyway; memory stays bounded).
    if (keys_.size() >= max_keys_) keys_.clear();
    it = keys_.emplace(key, Key{}).first;
  }
  const int64_t left_out = it->second.left_out;
  it->second = Key{now, 0};
  return left_out;
}

std::string AuditThrottle::LeftOut(int64_t count) {
  return count == 0 ? ""
                    : absl::StrCat(" (", count,
                                   " more from the same caller since the previous record, not "
                                   "recorded one by one)");
}

std::string PeerName(absl::string_view grpc_peer) {
  if (!absl::StartsWith(grpc_peer, "ipv6:%5B")) return std::string(grpc_peer);
  return absl::StrReplaceAll(grpc_peer, {{"%5B", "["}, {"%5D", "]"}, {"%25", "%"}});
}

std::string PeerAddress(absl::string_view peer) {
  const std::string name = PeerName(peer);
  absl::string_view p = name;
  if (absl::ConsumePrefix(&p, "ipv4:")) return std::string(p.substr(0, p.rfind(':')));
  if (absl::ConsumePrefix(&p, "ipv6:")) {
    p = p.substr(0, p.rfind(':'));
    absl::ConsumePrefix(&p, "[");
    absl::ConsumeSuffix(&p, "]");
    return std::string(p);
  }
  return std::string(p);
}

}  // namespace rdg
