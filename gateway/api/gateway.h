// The running gateway: wires config, storage, ingest and the gRPC services together and owns
// them. main.cc only parses flags, builds this and waits for a signal.
#pragma once

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/common/clock.h"
#include "rdg/v1/config.pb.h"

namespace rdg::api {

class Gateway {
 public:
  //! Opens storage, recovers unfinished uploads, and starts serving (mTLS) on config.listen.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const rdg::v1::GatewayConfig& config,
                                                        const Clock& clock);
  ~Gateway();

  //! The bound port (useful with port 0).
  int port() const;
  //! The monitoring port (0 when monitoring is disabled).
  int monitoring_port() const;
  //! Stops accepting calls, lets in-flight ones finish for up to `grace` (then cancels them;
  //! interrupted uploads stay resumable), and drains the worker pool.
  void Shutdown(absl::Duration grace);

 private:
  struct Parts;
  explicit Gateway(std::unique_ptr<Parts> parts);
  void HousekeepingLoop();
  //! Records SLA breaches that fell due since the last sweep.
  void SweepBreaches();
  //! Feeds /metrics the stage completions since the last call.
  void RefreshMetrics();

  std::unique_ptr<Parts> parts_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread housekeeper_;
};

}  // namespace rdg::api
