#include "gateway/monitoring/rpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace rdg::monitoring {
namespace {

//! The method's label: the name itself for a method of a service the gateway knows (compiled-in
//! protobuf services: RDG's, health, reflection), "other" for anything else.
std::string MethodLabel(const std::string& method) {
  const std::string full_name = absl::StrReplaceAll(absl::StripPrefix(method, "/"), {{"/", "."}});
  const auto* found =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full_name);
  // Spelled as gRPC spells it, whatever variant found it.
  return found != nullptr ? absl::StrCat("/", found->service()->full_name(), "/", found->name())
                          : "other";
}

}  // namespace

void RpcMetrics::Record(const std::string& method, const std::string& code,
                        absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  absl::MutexLock lock(&mu_);
  // The label of a method seen before is remembered (only the gateway's own methods are, so
  // clients cannot grow the table); the descriptor lookup is done once per method.
  std::string label;
  if (auto known = labels_.find(method); known != labels_.end()) {
    label = known->second;
  } else {
    label = MethodLabel(method);
    if (label != "other") labels_.emplace(method, label);
  }
  ++handled_[{label, code}];
  Latency& l = latency_[label];
  ++l.buckets[bucket];
  ++l.count;
  l.sum += seconds;
}

void RpcMetrics::Render(std::string& out) const {
  absl::MutexLock lock(&mu_);
  absl::StrAppend(&out,
                  "# HELP rdg_grpc_server_handled_total Calls answered since start-up, by method "
                  "and gRPC status code.\n# TYPE rdg_grpc_server_handled_total counter\n");
  for (const auto& [key, count] : handled_) {
    absl::StrAppend(&out, "rdg_grpc_server_handled_total{method=\"", key.first, "\",code=\"",
                    key.second, "\"} ", count, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP rdg_grpc_server_handling_seconds Time from a call's arrival to its "
                  "answer (streams: their whole length), by method.\n"
                  "# TYPE rdg_grpc_server_handling_seconds histogram\n");
  for (const auto& [method, l] : latency_) {
    int64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += l.buckets[i];
      absl::StrAppend(&out, "rdg_grpc_server_handling_seconds_bucket{method=\"", method, "\",le=\"",
                      kBuckets[i], "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "rdg_grpc_server_handling_seconds_bucket{method=\"", method,
                    "\",le=\"+Inf\"} ", l.count, "\n");
    absl::StrAppend(&out, "rdg_grpc_server_handling_seconds_sum{method=\"", method, "\"} ",
                    absl::StrFormat("%.17g", l.sum), "\n");
    absl::StrAppend(&out, "rdg_grpc_server_handling_seconds_count{method=\"", method, "\"} ",
                    l.count, "\n");
  }
}

}  // namespace rdg::monitoring
