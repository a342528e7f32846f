// Keeps the agent's checks at the gateway's own limits (IngestService.GetIngestLimits), so that a
// device hears "refused" at once for what the gateway would refuse later, instead of "stored"
// and a dead letter. The last answer is kept in agent.db: an agent that starts while the gateway
// is unreachable checks with what the gateway said before, not with its configured defaults.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "clients/agent/object_check.h"
#include "clients/agent/outbox.h"
#include "rdg/v1/ingest.grpc.pb.h"

namespace rdg::agent {

class GatewayLimits {
 public:
  GatewayLimits(std::shared_ptr<grpc::Channel> channel, Outbox& outbox, ObjectCheck& check,
                absl::Duration refresh);
  ~GatewayLimits();

  //! Applies the limits kept from the last answer, if any (before the receivers start).
  void ApplyKept();
  //! Asks the gateway now, then every `refresh` (every 30 s until the first answer).
  void Start();
  void Stop();

  //! One request and, on an answer, Adopt + keep. False when the gateway did not answer.
  bool RefreshOnce();

 private:
  void Run();
  void Apply(const rdg::v1::IngestLimits& limits, const char* source);

  std::unique_ptr<rdg::v1::IngestService::Stub> stub_;
  Outbox& outbox_;
  ObjectCheck& check_;
  const absl::Duration refresh_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  //!< guarded by mu_
  std::thread thread_;
};

}  // namespace rdg::agent
