// Server-streaming of an exam's stored objects (clinic download, reader fetch): one reactor per
// call, one chunk in memory at a time, blob reads on the worker pool.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/common/live_streams.h"
#include "rdg/v1/common.pb.h"
#include "storage/base/worker_pool.h"
#include "storage/blob_store.h"
#include "storage/records.h"

namespace rdg::api {

class ObjectStreamReactor final : public grpc::ServerWriteReactor<rdg::v1::ObjectChunk> {
 public:
  //! `load` runs on the pool: it authorises the call and lists the objects to send.
  using Loader = std::function<absl::StatusOr<std::vector<storage::ObjectRecord>>()>;
  //! How an object's bytes are read: from the blob store by its digest, or (the index snapshot
  //! of a backup) from a file of its own.
  using Opener = std::function<absl::StatusOr<std::unique_ptr<storage::BlobReader>>(
      const storage::ObjectRecord&)>;
  ObjectStreamReactor(WorkerPool& pool, const storage::BlobStore& blobs, Loader load);
  ObjectStreamReactor(WorkerPool& pool, Opener open, Loader load);

  void OnWriteDone(bool ok) override;
  //! No more blob reads for a call that is over; the task in flight finishes it.
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { delete this; }

 private:
  void Start();
  void Next();
  //! Fills chunk_ with the next piece of the current object, or sets done_.
  absl::Status Fill();

  const LiveStream live_{LiveStreams().object_streams};
  WorkerPool& pool_;
  Opener open_;
  Loader load_;
  std::vector<storage::ObjectRecord> objects_;
  size_t index_ = 0;
  std::unique_ptr<storage::BlobReader> reader_;
  int64_t offset_ = 0;
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
  rdg::v1::ObjectChunk chunk_;
};

}  // namespace rdg::api
