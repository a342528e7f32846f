// BlobStore: content-addressed, crash-safe storage of objects' original bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
  //! Opens a stored blob; NotFound if absent.
  virtual absl::StatusOr<std::unique_ptr<BlobReader>> Open(const Digest& digest) const = 0;
  virtual bool Exists(const Digest& digest) const = 0;
  //! Removes a blob (used only for blobs no index row references).
  virtual absl::Status Remove(const Digest& digest) = 0;
};

}  // namespace rdg::storage
