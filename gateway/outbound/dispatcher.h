// The outbound queue's workers, on the leading gateway. A planner makes the report versions
// signed since its last round into jobs (storage/index/outbound_store.h: one per destination of
// the exam's origin institution and of the reading institution, and per kind); each destination
// has a sender of its own, which sends its due jobs oldest first and records each outcome, so a
// PACS that is down or slow (a study of thousands of images) holds up nobody else. A job that
// fails for now is tried again after 10 s, doubling per attempt up to
// OutboundConfig.max_backoff_seconds; one refused for good waits for `rdg-admin outbound retry`.
// A destination that cannot be reached is not tried again until its sender's next round.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gateway/common/clock.h"
#include "gateway/outbound/payloads.h"
#include "rdg/v1/config.pb.h"
#include "storage/index/leadership.h"
#include "storage/index/outbound_store.h"

namespace rdg::outbound {

//! Sends one job's payload to one destination (dicom_sender.h, mllp_sender.h; fakes in tests).
class Sender {
 public:
  virtual ~Sender() = default;
  virtual SendOutcome Send(const Destination& destination, const storage::OutboundJob& job,
                           Payloads& payloads) = 0;
};

//! The real protocols: C-STORE for DICOM destinations (over TLS with `identity`, the gateway's
//! certificate, where configured), MLLP for HL7 ones.
std::unique_ptr<Sender> NetworkSender(absl::Duration timeout, const rdg::v1::TlsConfig& identity);

class Dispatcher {
 public:
  struct Options {
    absl::Duration max_backoff = absl::Minutes(5);
    absl::Duration first_backoff = absl::Seconds(10);
    absl::Duration poll = absl::Seconds(1);  //!< between rounds
  };
  //! The configuration's destinations by name (institutions[].destinations).
  static absl::flat_hash_map<std::string, Destination> DestinationsOf(
      const rdg::v1::GatewayConfig& config);

  Dispatcher(storage::OutboundStore& store, storage::Leadership& leadership,
             absl::flat_hash_map<std::string, Destination> destinations, Payloads& payloads,
             Sender& sender, const Clock& clock, Options options);
  ~Dispatcher();

  //! Starts the planner and one sender per destination, each on a thread of its own (nothing
  //! when no destination is configured).
  void Start();
  //! Ends the rounds; an attempt under way finishes (senders have timeouts).
  void Stop();
  //! Wakes every thread for a round now (a report was signed).
  void Poke();

  //! One round of everything, on the caller's thread (tests): plans, then sends what is due to
  //! each destination in turn. Does nothing unless this gateway leads.
  absl::Status RunOnce();

 private:
  absl::Status Plan();
  //! Fails the pending jobs of destinations no longer configured (visible, retried if it returns).
  absl::Status FailUnconfigured();
  absl::Status SendDue(const std::string& destination);
  storage::OutboundAttempt Outcome(const storage::OutboundJob& job, const SendOutcome& sent) const;
  //! Runs `round` every poll or Poke until Stop.
  void Loop(const std::function<absl::Status()>& round);
  bool stopping();

  storage::OutboundStore& store_;
  storage::Leadership& leadership_;
  const absl::flat_hash_map<std::string, Destination> destinations_;
  //! The destinations of each institution (its own, as origin or reader).
  absl::flat_hash_map<std::string, std::vector<std::string>> by_institution_;
  Payloads& payloads_;
  Sender& sender_;
  const Clock& clock_;
  const Options options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pokes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace rdg::outbound
