// The edge agent's forwarder: takes outbox items and uploads them to the gateway through the
// resumable sessions (clients/common/object_upload.h), several in flight. A connectivity failure
// (gateway down, network gone, certificate not accepted) pauses every worker with exponential
// backoff and full jitter and charges no item; other transient failures back the item off alone.
// The gateway's verdict on an object (invalid, conflicting, too large) sends it to dead-letter
// with the reason: never retried forever, never dropped silently. An object during whose commit
// the gateway went away (it crashed, or the link broke) becomes a suspect: it is sent again
// alone, and after forwarder.quarantine_after such losses it goes to dead-letter, so that an
// object the gateway fails on cannot crash it in a loop or hold the rest of the outbox.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "clients/agent/outbox.h"
#include "clients/common/object_upload.h"
#include "rdg/v1/agent_config.pb.h"

namespace rdg::agent {

//! What to do after a failed attempt.
enum class FailureKind {
  kConnectivity,  //!< nothing wrong with the object: pause everything, retry
  kTransient,     //!< retry this object after a backoff
  kRefused,       //!< the gateway's verdict: dead-letter
};
FailureKind ClassifyFailure(grpc::StatusCode code);

class Forwarder {
 public:
  Forwarder(const rdg::v1::Forwarder& config, std::shared_ptr<grpc::Channel> channel,
            Outbox& outbox);
  ~Forwarder();

  void Start();
  //! Wakes idle workers: something new is in the outbox.
  void Wake();
  //! Stops taking items; uploads in flight get `grace` to finish, then stop at their next chunk
  //! (resumable from the committed offset).
  void Stop(absl::Duration grace);

 private:
  void Work();
  void Forward(const OutboxItem& item);
  //! After a failed attempt: counts a loss of the gateway during the commit, and quarantines
  //! the item when it reached the limit. True when the item went to dead-letter.
  bool Quarantined(const OutboxItem& item, const clients::UploadOutcome& outcome,
                   const std::string& error, absl::Time now);
  absl::Duration Backoff(int failures);

  const rdg::v1::Forwarder config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rdg::v1::IngestService::Stub> stub_;
  Outbox& outbox_;
  clients::RateLimiter limiter_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cancel_uploads_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  std::mt19937_64 rng_;             //!< guarded by mu_
  absl::Time paused_until_;         //!< guarded by mu_: gateway unreachable until then
  int connectivity_failures_ = 0;   //!< guarded by mu_: consecutive
  int in_flight_ = 0;               //!< guarded by mu_
  bool suspect_in_flight_ = false;  //!< guarded by mu_: a suspect is being sent alone
  std::vector<std::thread> workers_;
};

}  // namespace rdg::agent
