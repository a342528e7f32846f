#include "gateway/common/housekeeper.h"

#include <utility>

namespace rdg {

Housekeeper::Housekeeper(const Clock& clock, absl::Duration tick) : clock_(clock), tick_(tick) {}

Housekeeper::~Housekeeper() { Stop(); }

void Housekeeper::Add(std::string name, absl::Duration every, std::function<void()> job) {
  jobs_.push_back(Job{std::move(name), every, std::move(job), clock_.Now()});
}

void Housekeeper::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Housekeeper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> Housekeeper::RunDue() {
  std::vector<std::string> ran;
  for (Job& job : jobs_) {
    const absl::Time now = clock_.Now();
    if (now - job.last < job.every && now >= job.last) continue;
    job.run();
    job.last = now;
    ran.push_back(job.name);
  }
  return ran;
}

void Housekeeper::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick_)) return;
    }
    RunDue();
  }
}

}  // namespace rdg
