// One process per data directory: an exclusive flock(2) on <dir>/rdg.lock, held for as long as
// the owning object lives. The kernel drops the lock when the process dies, however it dies, so
// a stale lock file never keeps a restarted gateway out.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace rdg::storage {

class DirectoryLock {
 public:
  //! Takes the lock on `dir` (which must exist) and writes this process's pid into the lock file
  //! (mode 0600). FAILED_PRECONDITION "data dir DIR is in use by pid N" when another process
  //! holds it.
  static absl::StatusOr<DirectoryLock> Acquire(const std::string& dir);
  //! Takes the lock shared: several gateways on one PostgreSQL index share a data dir (its blobs
  //! and staged uploads), but not with a process that holds it alone (a gateway on its own
  //! SQLite index there, or the agent). FAILED_PRECONDITION when one does.
  static absl::StatusOr<DirectoryLock> AcquireShared(const std::string& dir);

  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();  //!< releases the lock (the file stays: removing it would race a new holder)

  const std::string& path() const { return path_; }

 private:
  DirectoryLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_ = -1;
  std::string path_;
};

}  // namespace rdg::storage
