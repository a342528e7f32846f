#include "gateway/api/object_stream.h"

#include "absl/strings/str_cat.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "storage/base/status_macros.h"

namespace rdg::api {
namespace {
constexpr int64_t kChunkBytes = 1 << 20;
}  // namespace

ObjectStreamReactor::ObjectStreamReactor(WorkerPool& pool, const storage::BlobStore& blobs,
                                         Loader load)
    : ObjectStreamReactor(
          pool,
          [&blobs](const storage::ObjectRecord& object)
              -> absl::StatusOr<std::unique_ptr<storage::BlobReader>> {
            RDG_ASSIGN_OR_RETURN(auto digest, storage::DigestFromHexOrRaw(object.sha256_hex));
            return blobs.Open(digest);
          },
          std::move(load)) {}

ObjectStreamReactor::ObjectStreamReactor(WorkerPool& pool, Opener open, Loader load)
    : pool_(pool), open_(std::move(open)), load_(std::move(load)) {
  pool_.Post([this] { Start(); });
}

void ObjectStreamReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "transfer cancelled"));
    return;
  }
  pool_.Post([this] { Next(); });
}

// Lifetime: exactly one operation is in flight at a time (a pool task or a write), and only its
// completion calls Finish, so gRPC cannot run OnDone (which deletes this) while a task runs.
void ObjectStreamReactor::Start() {
  if (cancelled_.load()) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "transfer cancelled"));
    return;
  }
  auto objects = load_();
  if (!objects.ok()) {
    Finish(ToGrpcStatus(objects.status()));
    return;
  }
  objects_ = *std::move(objects);
  Next();
}

void ObjectStreamReactor::Next() {
  if (cancelled_.load()) {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "transfer cancelled"));
    return;
  }
  absl::Status s = Fill();
  if (!s.ok()) {
    Finish(ToGrpcStatus(s));
  } else if (done_) {
    Finish(grpc::Status::OK);
  } else {
    StartWrite(&chunk_);
  }
}

absl::Status ObjectStreamReactor::Fill() {
  chunk_.Clear();
  if (reader_ == nullptr) {
    if (index_ >= objects_.size()) {
      done_ = true;
      return absl::OkStatus();
    }
    const auto& object = objects_[index_];
    auto reader = open_(object);
    if (!reader.ok()) {
      return absl::DataLossError(absl::StrCat("stored object ", object.sop_instance_uid,
                                              " is unreadable: ", reader.status().message()));
    }
    reader_ = *std::move(reader);
    offset_ = 0;
    *chunk_.mutable_object() = ToProto(object);
  }
  std::string* data = chunk_.mutable_data();
  data->resize(static_cast<size_t>(std::min(kChunkBytes, reader_->Size() - offset_)));
  size_t filled = 0;
  while (filled < data->size()) {
    RDG_ASSIGN_OR_RETURN(size_t n, reader_->ReadAt(offset_ + static_cast<int64_t>(filled),
                                                   data->data() + filled, data->size() - filled));
    if (n == 0) return absl::DataLossError("stored object is shorter than indexed");
    filled += n;
  }
  chunk_.set_offset(offset_);
  offset_ += static_cast<int64_t>(filled);
  if (offset_ >= reader_->Size()) {
    reader_.reset();
    ++index_;
  }
  return absl::OkStatus();
}

}  // namespace rdg::api
