#include "gateway/ingest/index_committer.h"

#include <vector>

namespace rdg::ingest {

IndexCommitter::IndexCommitter(storage::IndexStore& index, int max_batch)
    : index_(index), max_batch_(max_batch), thread_([this] { Loop(); }) {}

IndexCommitter::~IndexCommitter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

int64_t IndexCommitter::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

absl::StatusOr<storage::CommitOutcome> IndexCommitter::Commit(storage::NewObject item) {
  Pending pending{std::move(item), std::nullopt};
  absl::MutexLock lock(&mu_);
  queue_.push_back(&pending);
  mu_.Await(absl::Condition(
      +[](Pending* p) { return p->result.has_value(); }, &pending));
  return *std::move(pending.result);
}

void IndexCommitter::Loop() {
  for (;;) {
    std::vector<Pending*> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](IndexCommitter* c)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return c->stopping_ || !c->queue_.empty(); },
          this));
      if (queue_.empty()) return;
      while (!queue_.empty() && static_cast<int>(batch.size()) < max_batch_) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    std::vector<storage::NewObject> items;
    items.reserve(batch.size());
    for (Pending* p : batch) items.push_back(std::move(p->item));
    auto results = index_.CommitObjects(items);
    absl::MutexLock lock(&mu_);
    ++batches_;
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
  }
}

}  // namespace rdg::ingest
