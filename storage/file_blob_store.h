// BlobStore on a local (or shared) directory: ROOT/ab/abcdef… (first byte of the digest as
// fan-out), and ROOT/holds, the empty file whose byte-range locks are the blobs' holds.
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
  //! Holds are byte-range locks in ROOT/holds, one byte per blob at an offset taken from its
  //! digest (open file description locks, fcntl F_OFD_SETLK*, which the Linux NFS client takes
  //! on the server: they hold against other gateways too). Not the blob's own file: that is also
  //! the upload's part file, which its upload keeps locked. A hold is a shared lock, waiting
  //! while a removal holds the byte; the blob is then opened (on NFS, asked of the server).
  absl::StatusOr<std::unique_ptr<Hold>> HoldBlob(const Digest& digest) override;
  //! Takes the blob's byte exclusively without waiting (held: not removed), then asks
  //! `referenced` and removes the blob under the lock.
  absl::StatusOr<bool> RemoveUnreferenced(
      const Digest& digest, absl::FunctionRef<absl::StatusOr<bool>()> referenced) override;

  //! Where a blob lives (for tests and tools).
  std::string PathOf(const Digest& digest) const;

 private:
  explicit FileBlobStore(std::string root) : root_(std::move(root)), holds_(root_ + "/holds") {}
  std::string DirOf(const Digest& digest) const;

  const std::string root_;   //!< fan-out directories live directly below
  const std::string holds_;  //!< the file of the holds' locks
};

}  // namespace rdg::storage
