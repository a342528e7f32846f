#include "gateway/ingest/index_committer.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace rdg::ingest {

IndexCommitter::IndexCommitter(storage::ExamStore& exams, int max_batch, storage::BlobStore* blobs)
    : exams_(exams), max_batch_(max_batch), blobs_(blobs), thread_([this] { Loop(); }) {}

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

absl::StatusOr<storage::CommitOutcome> IndexCommitter::Commit(
    storage::NewObject item, std::optional<storage::BlobStore::Adoption> blob) {
  if (blob.has_value() && blobs_ == nullptr) {  // a wiring mistake, not worth a retry
    return absl::FailedPreconditionError("this committer has no blob store to adopt files into");
  }
  Pending pending{std::move(item), std::move(blob), std::nullopt};
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
    auto results = CommitBatch(batch);
    absl::MutexLock lock(&mu_);
    ++batches_;
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
  }
}

absl::StatusOr<std::unique_ptr<storage::BlobStore::Hold>> IndexCommitter::HoldAdopted(
    const storage::BlobStore::Adoption& file) {
  // The blob may have been stored before by an upload whose object was then refused, and
  // removed by it (on this gateway or another) between the adoption and the hold: it is adopted
  // again from the staged file, which is still there.
  constexpr int kTries = 3;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    auto hold = blobs_->HoldBlob(file.digest);
    if (!absl::IsNotFound(hold.status())) return hold;
    if (absl::Status s = blobs_->Adopt(file.path, file.digest); !s.ok()) return s;
  }
  return absl::UnavailableError(absl::StrCat("the stored copy of these bytes was removed ", kTries,
                                             " times while this upload stored it; retry"));
}

std::vector<absl::StatusOr<storage::CommitOutcome>> IndexCommitter::CommitBatch(
    std::vector<Pending*>& batch) {
  std::vector<absl::StatusOr<storage::CommitOutcome>> results(batch.size(),
                                                              absl::UnknownError("not committed"));
  // The files first: no row may name a blob that is not durable yet.
  std::vector<storage::BlobStore::Adoption> files;
  std::vector<size_t> file_of;  // batch position of each file
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i]->blob.has_value()) {
      files.push_back(*std::move(batch[i]->blob));
      file_of.push_back(i);
    }
  }
  std::vector<bool> adopted(batch.size(), true);
  // Held until the rows naming them are committed: no gateway removes them in between.
  std::vector<std::unique_ptr<storage::BlobStore::Hold>> holds;
  if (!files.empty()) {
    std::vector<absl::Status> statuses = blobs_->AdoptAll(files);
    if (statuses.size() != files.size()) {
      statuses.assign(files.size(), absl::InternalError("the blob store answered for other files"));
    }
    for (size_t k = 0; k < file_of.size(); ++k) {
      if (statuses[k].ok()) {
        auto hold = HoldAdopted(files[k]);
        if (hold.ok()) {
          holds.push_back(*std::move(hold));
          continue;
        }
        statuses[k] = hold.status();
      }
      adopted[file_of[k]] = false;
      results[file_of[k]] = std::move(statuses[k]);
    }
  }
  std::vector<storage::NewObject> items;
  std::vector<size_t> item_of;
  items.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!adopted[i]) continue;
    items.push_back(std::move(batch[i]->item));
    item_of.push_back(i);
  }
  if (items.empty()) return results;
  auto committed = exams_.CommitObjects(items);
  for (size_t k = 0; k < item_of.size(); ++k) results[item_of[k]] = std::move(committed[k]);
  return results;
}

}  // namespace rdg::ingest
