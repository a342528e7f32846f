// BlobStore: content-addressed, crash-safe storage of objects' original bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/base/digest.h"

namespace rdg::storage {

//! Random-access reader of one stored blob.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual int64_t Size() const = 0;
  //! Reads up to `n` bytes at `offset`; 0 at the end.
  virtual absl::StatusOr<size_t> ReadAt(int64_t offset, char* buf, size_t n) const = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  //! Takes a complete file (same filesystem as the store) in under `digest`, durably: the file is
  //! fsynced, hard-linked into place and its directory fsynced before this returns; nothing is
  //! done if the blob is already stored. The file itself stays where it is, so a caller whose
  //! later step fails transiently still has it; the caller removes it once it is no longer
  //! needed. The caller has verified the digest.
  virtual absl::Status Adopt(const std::string& path, const Digest& digest) = 0;

  //! One file for AdoptAll.
  struct Adoption {
    std::string path;
    Digest digest{};
  };
  //! Adopt for several files at once, one status per file in the same order: each adopted file
  //! is as durable when this returns as Adopt makes it, and a failure costs only the files it
  //! concerns. A store may share the durability work among the files (a group commit); this
  //! default adopts them one by one.
  virtual std::vector<absl::Status> AdoptAll(absl::Span<const Adoption> files) {
    std::vector<absl::Status> results;
    results.reserve(files.size());
    for (const Adoption& f : files) results.push_back(Adopt(f.path, f.digest));
    return results;
  }
  //! Opens a stored blob; NotFound if absent.
  virtual absl::StatusOr<std::unique_ptr<BlobReader>> Open(const Digest& digest) const = 0;
  virtual bool Exists(const Digest& digest) const = 0;
  //! Removes a blob (used only for blobs no index row references).
  virtual absl::Status Remove(const Digest& digest) = 0;

  //! Keeps one stored blob from RemoveUnreferenced — of this process or of another gateway
  //! sharing the store — while it lives: an upload holds the blob it adopted until the row that
  //! names it is committed.
  class Hold {
   public:
    virtual ~Hold() = default;
  };
  //! A hold on a stored blob; NOT_FOUND when it is not stored (any more): it was removed after
  //! the caller adopted it, and must be adopted again.
  virtual absl::StatusOr<std::unique_ptr<Hold>> HoldBlob(const Digest& digest) = 0;
  //! Removes the blob unless someone holds it or `referenced` — asked while no hold can be
  //! taken — says an index row names it; whether it was removed. An absent blob is not removed.
  virtual absl::StatusOr<bool> RemoveUnreferenced(
      const Digest& digest, absl::FunctionRef<absl::StatusOr<bool>()> referenced) = 0;
};

}  // namespace rdg::storage
