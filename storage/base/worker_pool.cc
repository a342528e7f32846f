#include "storage/base/worker_pool.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace rdg {

WorkerPool::WorkerPool(int threads, std::string name, int nice) : name_(std::move(name)) {
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) StartThread(nice);
}

void WorkerPool::StartThread(int nice) {
  threads_.emplace_back([this, nice] {
    ::pthread_setname_np(::pthread_self(), name_.substr(0, 15).c_str());
    // Linux keeps a nice value per thread: PRIO_PROCESS with a thread id sets this thread's.
    // Lowering one's own priority is always allowed; if a sandbox refused it the threads would
    // only keep the normal priority.
    if (nice > 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
    Loop();
  });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void WorkerPool::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

void WorkerPool::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->stopping_ || !p->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace rdg
