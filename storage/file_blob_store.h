// BlobStore on a local (or shared) directory: ROOT/ab/abcdef… (first byte of the digest as
// fan-out).
#pragma once

#include <memory>
#include <string>

#include "storage/blob_store.h"

namespace rdg::storage {

//! A reader of the file at `path` as it is now (a backup's index snapshot). The file may be
//! unlinked once this returns: the reader keeps it open.
absl::StatusOr<std::unique_ptr<BlobReader>> OpenFileReader(const std::string& path);

class FileBlobStore final : public BlobStore {
 public:
  //! Creates ROOT and its fan-out directories if needed.
  static absl::StatusOr<std::unique_ptr<FileBlobStore>> Create(const std::string& root);

  absl::Status Adopt(const std::string& path, const Digest& digest) override;
  //! A group commit: one syncfs(2) of the store's file system writes every file's bytes (each
  //! file's own writeback error is then checked), each file is hard-linked into place, then a
  //! second syncfs and an fsync of the root make the links durable: a few syncs for the whole
  //! batch instead of two fsyncs per file. Files must live on the store's file system (as for
  //! Adopt); the syncs also write whatever else is dirty on it. Needs Linux 5.8 or later, whose
  //! syncfs reports writeback errors.
  std::vector<absl::Status> AdoptAll(absl::Span<const Adoption> files) override;
  absl::StatusOr<std::unique_ptr<BlobReader>> Open(const Digest& digest) const override;
  bool Exists(const Digest& digest) const override;
  absl::Status Remove(const Digest& digest) override;

  //! Where a blob lives (for tests and tools).
  std::string PathOf(const Digest& digest) const;

 private:
  explicit FileBlobStore(std::string root) : root_(std::move(root)) {}
  std::string DirOf(const Digest& digest) const;

  const std::string root_;  //!< fan-out directories live directly below
};

}  // namespace rdg::storage
