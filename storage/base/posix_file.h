// Thin RAII wrappers over POSIX file calls, returning absl::Status. Used by the blob store and the
// upload staging area; nothing here knows about DICOM or the index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdg::storage {

//! An open file descriptor, closed on destruction.
class File {
 public:
  //! Opens for appending, creating the file (mode 0600: only the owning service reads it) when
  //! `create` is set.
  static absl::StatusOr<File> OpenForAppend(const std::string& path, bool create);
  static absl::StatusOr<File> OpenForRead(const std::string& path);

  File() = default;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  absl::Status Append(absl::string_view data);
  //! Reads up to `n` bytes at `offset`; returns the number read (0 at end of file).
  absl::StatusOr<size_t> ReadAt(int64_t offset, char* buf, size_t n) const;
  absl::Status Sync();
  absl::StatusOr<int64_t> Size() const;
  //! Shrinks the file to `size` bytes (drops a torn tail after a crash).
  absl::Status Truncate(int64_t size);
  //! Takes an exclusive lock of the whole file (an open file description lock, fcntl
  //! F_OFD_SETLK), held until this descriptor is closed: ABORTED while another open file
  //! description holds it (another gateway sharing the directory, also over NFS).
  //! With `length` > 0, only bytes [start, start + length) are locked (they need not exist): one
  //! file then holds many independent locks.
  absl::Status TryLock(int64_t start = 0, int64_t length = 0);
  //! Takes a shared lock (F_OFD_SETLKW, F_RDLCK; the file open for reading) of the whole file, or
  //! of [start, start + length), waiting while another open file description holds any of it
  //! exclusively.
  absl::Status LockShared(int64_t start = 0, int64_t length = 0);
  //! Whether the path it was opened by still names this file (not removed or replaced since).
  absl::StatusOr<bool> StillNamed() const;
  const std::string& path() const { return path_; }

 private:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

//! fsyncs a directory so that renames and creations in it are durable.
absl::Status SyncDirectory(const std::string& dir);
//! syncfs(2) of the file system holding `path`: everything written to it so far, data and
//! metadata (new names included), is written out when this returns OK. Linux (5.8 on) reports a
//! writeback error on the file system once, to the first caller that asks: use
//! WaitForWriteback for one file's own.
absl::Status SyncFileSystem(const std::string& path);
//! Waits until the file's dirty pages are written back (sync_file_range(2); no cache flush) and
//! reports a writeback error of that file which nobody has reported yet.
absl::Status WaitForWriteback(const std::string& path);
//! Creates a directory (and parents, mode 0700); succeeds if it exists.
absl::Status MakeDirectories(const std::string& dir);
//! Proves a file made in `from_dir` can be hard-linked into `to_dir` (one file system, one
//! mount): FAILED_PRECONDITION naming both and the reason otherwise. Leaves nothing behind.
absl::Status ProbeHardLink(const std::string& from_dir, const std::string& to_dir);
//! Proves `dir` takes new files: creates, writes, fsyncs and removes a probe file in it.
//! FAILED_PRECONDITION naming the directory and the error (read-only mount, permissions, full).
absl::Status ProbeWritable(const std::string& dir);
//! Clears the group and other bits of `path`'s mode (e.g. 0755 → 0700) when any is set; returns
//! whether it changed anything. NOT_FOUND when `path` does not exist.
absl::StatusOr<bool> RestrictToOwner(const std::string& path);
//! Renames atomically within one filesystem.
absl::Status RenameFile(const std::string& from, const std::string& to);
//! Creates `to` as a second name of `from` (same filesystem); succeeds if `to` exists already.
absl::Status LinkFile(const std::string& from, const std::string& to);
//! Removes a file; succeeds if it does not exist.
absl::Status RemoveFile(const std::string& path);
//! Names (not paths) of the regular files in `dir`.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir);
//! Size of a file, or NotFound.
absl::StatusOr<int64_t> FileSize(const std::string& path);
//! The whole of a (small) file: a config, a certificate, a key, a token. NOT_FOUND saying
//! "cannot read <what> <path>" when it cannot be opened or read.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, absl::string_view what);

}  // namespace rdg::storage
