// Group commit: concurrent uploads hand their staged files and index rows to one committer
// thread, which makes every pending file durable in the blob store at once (BlobStore::AdoptAll:
// two file-system syncs for the batch), then writes every pending object's rows in ONE durable
// transaction (one WAL fsync), and wakes the callers. Durability then costs a few syncs per
// batch rather than three fsyncs per object.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/blob_store.h"
#include "storage/index/exam_store.h"

namespace rdg::ingest {

class IndexCommitter {
 public:
  //! `blobs`: where staged files are adopted (none: Commit takes no files).
  IndexCommitter(storage::ExamStore& exams, int max_batch, storage::BlobStore* blobs = nullptr);
  ~IndexCommitter();  //!< commits what is pending, then joins the thread
  IndexCommitter(const IndexCommitter&) = delete;
  IndexCommitter& operator=(const IndexCommitter&) = delete;

  //! Blocks until `item` is durably committed (or refused) in some batch. With `blob`, the staged
  //! file is adopted into the blob store in the same batch, before any row is written; if that
  //! fails the item is not committed and the failure is returned.
  absl::StatusOr<storage::CommitOutcome> Commit(
      storage::NewObject item, std::optional<storage::BlobStore::Adoption> blob = std::nullopt);

  //! Batches committed so far (for tests and metrics).
  int64_t batches() const;

 private:
  struct Pending {
    storage::NewObject item;
    std::optional<storage::BlobStore::Adoption> blob;
    std::optional<absl::StatusOr<storage::CommitOutcome>> result;
  };
  void Loop();
  //! Adopts the batch's files and commits the rows of those adopted (or without a file).
  std::vector<absl::StatusOr<storage::CommitOutcome>> CommitBatch(std::vector<Pending*>& batch);
  //! A hold on the blob `file` was just adopted as, adopting it again if it was removed since.
  absl::StatusOr<std::unique_ptr<storage::BlobStore::Hold>> HoldAdopted(
      const storage::BlobStore::Adoption& file);

  storage::ExamStore& exams_;
  const int max_batch_;
  storage::BlobStore* const blobs_;
  mutable absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);  //!< callers own the Pending objects
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace rdg::ingest
