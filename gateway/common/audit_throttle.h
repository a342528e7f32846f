// What a caller without a valid identity can repeat at will — a scanner at the monitoring port,
// a revoked certificate retrying its handshake, calls without a usable certificate — must not
// grow the audit log without bound or starve the index's writer. The audit of such refusals goes
// through this: at most one record per key (the address or certificate subject) per window, and
// the record written says how many were left out since the previous one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rdg {

class AuditThrottle {
 public:
  explicit AuditThrottle(absl::Duration window = absl::Minutes(1), size_t max_keys = 100000)
      : window_(window), max_keys_(max_keys) {}

  //! nullopt: leave this one out. Otherwise write it, noting the returned number of refusals
  //! of `key` left out since the last one written. Thread-safe.
  std::optional<int64_t> Admit(const std::string& key, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  //! " (N more … not recorded)" for a record's detail, or "" when none were left out.
  static std::string LeftOut(int64_t count);

 private:
  struct Key {
    absl::Time written;
    int64_t left_out = 0;
  };
  const absl::Duration window_;
  const size_t max_keys_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Key> keys_ ABSL_GUARDED_BY(mu_);
};

//! A gRPC peer name as the audit log keeps it: gRPC 1.51 writes IPv6 peers URI-encoded
//! ("ipv6:%5B::1%5D:50122"); this gives "ipv6:[::1]:50122". Others unchanged.
std::string PeerName(absl::string_view grpc_peer);

//! The address alone: "ipv4:10.1.2.3:50122" → "10.1.2.3", "ipv6:[::1]:5" → "::1".
std::string PeerAddress(absl::string_view peer);

}  // namespace rdg
