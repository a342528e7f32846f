// A fixed pool of threads for blocking work with one FIFO queue: the gateway's disk and index work
// handed off by gRPC reactions (which must never block), the simulator's uploads. Threads are
// owned by the pool and joined in its destructor after the queue drains.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace rdg {

class WorkerPool {
 public:
  //! `name` (at most 15 characters) names the threads for ps, top and perf. `nice` above 0 runs
  //! them at a lower CPU priority than the rest of the process (as nice(1) would, per thread),
  //! so that work on other pools goes first when the cores are busy.
  explicit WorkerPool(int threads, std::string name = "rdg-worker", int nice = 0);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  //! Queues `task`; it runs on one of the pool's threads.
  void Post(std::function<void()> task);

 private:
  void Loop();
  void StartThread(int nice);

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  const std::string name_;
  std::vector<std::thread> threads_;
};

}  // namespace rdg
