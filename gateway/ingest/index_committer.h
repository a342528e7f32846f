// Group commit: concurrent uploads hand their index rows to one committer thread, which writes
// everything pending in ONE durable transaction (one WAL fsync for the whole batch) and wakes the
// callers. Durability then costs one fsync per batch rather than one per object.
#pragma once

#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/index_store.h"

namespace rdg::ingest {

class IndexCommitter {
 public:
  IndexCommitter(storage::IndexStore& index, int max_batch);
  ~IndexCommitter();  //!< commits what is pending, then joins the thread
  IndexCommitter(const IndexCommitter&) = delete;
  IndexCommitter& operator=(const IndexCommitter&) = delete;

  //! Blocks until `item` is durably committed (or refused) in some batch.
  absl::StatusOr<storage::CommitOutcome> Commit(storage::NewObject item);

  //! Batches committed so far (for tests and metrics).
  int64_t batches() const;

 private:
  struct Pending {
    storage::NewObject item;
    std::optional<absl::StatusOr<storage::CommitOutcome>> result;
  };
  void Loop();

  storage::IndexStore& index_;
  const int max_batch_;
  mutable absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);  //!< callers own the Pending objects
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace rdg::ingest
