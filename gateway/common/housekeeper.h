// The gateway's periodic jobs (SLA breach sweeps, metrics, claim lease expiry, escalation,
// stalled upload streams, expired upload sessions), due by the injected clock. One thread wakes
// every `tick` of real time and runs the jobs that are due; RunDue() is that step alone, so tests
// drive it with a FakeClock. Jobs that must run once per index (several gateways on one
// PostgreSQL index) run only while this gateway leads (storage/index/leadership.h).
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/common/clock.h"

namespace rdg {

class Housekeeper {
 public:
  //! Where a job runs: on every gateway, or on the one that leads its index.
  enum class Scope { kEveryGateway, kLeaderOnly };
  //! `tick`: how often the thread looks for due jobs (real time). `leads`: whether this gateway
  //! leads its index now (asked once per round that has a kLeaderOnly job due); none: always.
  Housekeeper(const Clock& clock, absl::Duration tick, std::function<bool()> leads = nullptr);
  ~Housekeeper();  //!< Stop()
  Housekeeper(const Housekeeper&) = delete;
  Housekeeper& operator=(const Housekeeper&) = delete;

  //! A job that runs when `every` has passed on the clock since it last ran (or since it was
  //! added), and also after the clock was set back. Jobs run one at a time, in the order added.
  //! Only before Start().
  //! A kLeaderOnly job is due as usual but waits while another gateway leads; it runs in the
  //! first round this gateway leads.
  void Add(std::string name, absl::Duration every, std::function<void()> job,
           Scope scope = Scope::kEveryGateway);
  //! Starts the thread.
  void Start();
  //! Wakes the thread and joins it (a job running finishes first). Idempotent.
  void Stop();
  //! Runs the jobs due now; returns their names in the order they ran.
  std::vector<std::string> RunDue();

 private:
  struct Job {
    std::string name;
    absl::Duration every;
    std::function<void()> run;
    absl::Time last;  //!< when it last ran (or was added)
    Scope scope = Scope::kEveryGateway;
  };
  void Loop();

  const Clock& clock_;
  const absl::Duration tick_;
  const std::function<bool()> leads_;
  std::vector<Job> jobs_;  //!< fixed once started; touched by one thread at a time
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace rdg
