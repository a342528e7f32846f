// Whether the gateway's storage is safe to take data: free space on the data dir's filesystem
// above the configured reserve, and the index able to take writes — for SQLite its file writable
// and its write-ahead log still the file SQLite opened, for PostgreSQL the server reachable.
// /readyz reports Check(); uploads start only when AdmitUpload() is OK, so a filling disk pushes
// clients back (UNAVAILABLE, which they retry) before a write fails.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rdg {

class StorageGuard {
 public:
  struct Options {
    std::string data_dir;       //!< blobs and staged uploads live on this filesystem
    std::string index_path;     //!< the SQLite index (its WAL is index_path + "-wal")
    int64_t reserve_bytes = 0;  //!< below this many free bytes nothing new is accepted; 0: off
    //! A database index (PostgreSQL): asked at every Check() whether it takes writes, instead
    //! of watching index_path's files. UNAVAILABLE while it cannot be reached.
    std::function<absl::Status()> index_probe;
  };
  //! Bytes available to the gateway's user on the filesystem holding `path`.
  using FreeSpace = std::function<absl::StatusOr<int64_t>(const std::string& path)>;
  //! statvfs: f_bavail × f_frsize.
  static absl::StatusOr<int64_t> StatvfsFreeSpace(const std::string& path);

  //! Remembers which file the index's WAL is now (the index must be open): FAILED_PRECONDITION
  //! when there is none. With an index_probe there is no file to watch.
  static absl::StatusOr<std::unique_ptr<StorageGuard>> Start(
      Options options, FreeSpace free_space = StatvfsFreeSpace);

  //! Checks everything again: OK, or UNAVAILABLE naming what is wrong. A vanished or replaced
  //! WAL stays reported until the gateway restarts (SQLite writes to the unlinked file, and what
  //! it holds is lost at the next crash).
  absl::Status Check() ABSL_LOCKS_EXCLUDED(mu_);
  //! For a new upload: UNAVAILABLE when the last Check() found the index unsafe or the disk is
  //! below its reserve now (one statvfs, cheap enough for every upload). Said to clients: the
  //! reserve figures, or that storage is not safe — never the server's paths.
  absl::Status AdmitUpload() ABSL_LOCKS_EXCLUDED(mu_);

  //! Free bytes on the data dir's filesystem now, and the reserve kept (for /metrics).
  absl::StatusOr<int64_t> FreeBytes() const { return free_space_(options_.data_dir); }
  int64_t reserve_bytes() const { return options_.reserve_bytes; }

 private:
  StorageGuard(Options options, FreeSpace free_space, dev_t wal_device, ino_t wal_inode);
  absl::Status CheckReserve() const;  // sets below_reserve_
  absl::Status CheckWal() const;

  const Options options_;
  const FreeSpace free_space_;
  const dev_t wal_device_;
  const ino_t wal_inode_;
  absl::Mutex mu_;
  //! The index's state at the last Check(): OK, not writable, or (for good) its WAL lost.
  absl::Status index_ ABSL_GUARDED_BY(mu_);
  bool wal_lost_ ABSL_GUARDED_BY(mu_) = false;
  //! What the last CheckReserve() found (its message holds no path).
  mutable std::atomic<bool> below_reserve_{false};
};

}  // namespace rdg
