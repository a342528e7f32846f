// Per-RPC figures for /metrics: calls answered, by method and status code, and how long they took
// (a histogram per method), fed by the gateway's call-metrics interceptor (gateway/api) and
// rendered in the Prometheus text format. Methods are those of the gateway's services; any
// other name a client sends is counted as "other", so clients cannot grow the label set.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rdg::monitoring {

class RpcMetrics {
 public:
  //! Upper bounds (seconds) of the latency buckets; +Inf is implied.
  static constexpr std::array<double, 12> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10,  60};

  //! One answered call of `method` ("/rdg.v1.ExamService/GetExam") with gRPC status `code`
  //! (its name, e.g. "NOT_FOUND") after `elapsed`. Thread-safe.
  void Record(const std::string& method, const std::string& code, absl::Duration elapsed);

  //! rdg_grpc_server_handled_total and rdg_grpc_server_handling_seconds.
  void Render(std::string& out) const;

 private:
  struct Latency {
    std::array<int64_t, kBuckets.size() + 1> buckets{};  //!< non-cumulative, then +Inf
    int64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, int64_t> handled_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Latency> latency_ ABSL_GUARDED_BY(mu_);
  //! Method name as sent → its label, for the gateway's own methods.
  absl::flat_hash_map<std::string, std::string> labels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdg::monitoring
