#include "gateway/common/housekeeper.h"

#include <optional>
#include <utility>

namespace rdg {

Housekeeper::Housekeeper(const Clock& clock, absl::Duration tick, std::function<bool()> leads)
    : clock_(clock), tick_(tick), leads_(std::move(leads)) {}

Housekeeper::~Housekeeper() { Stop(); }

void Housekeeper::Add(std::string name, absl::Duration every, std::function<void()> job,
                      Scope scope) {
  jobs_.push_back(Job{std::move(name), every, std::move(job), clock_.Now(), scope});
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
  std::optional<bool> leading;  // asked at most once a round
  for (Job& job : jobs_) {
    const absl::Time now = clock_.Now();
    if (now - job.last < job.every && now >= job.last) continue;
    if (job.scope == Scope::kLeaderOnly && leads_) {
      if (!leading.has_value()) leading = leads_();
      if (!*leading) continue;  // due: runs as soon as this gateway leads
    }
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
