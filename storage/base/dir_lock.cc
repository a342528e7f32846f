#include "storage/base/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rdg::storage {
namespace {

//! The pid the holder wrote, or "unknown" (it may not have written it yet).
std::string HolderPid(int fd) {
  char buffer[32] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  std::string pid(absl::StripAsciiWhitespace(n > 0 ? std::string(buffer, n) : std::string()));
  return pid.empty() ? "unknown" : pid;
}

//! The lock file of `dir` opened and flock'ed with `how` (LOCK_EX or LOCK_SH); when another
//! process holds it, FAILED_PRECONDITION "data dir DIR is in use by pid N" and `why`.
absl::StatusOr<int> OpenAndLock(const std::string& dir, const std::string& path, int how,
                                absl::string_view why) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the lock file ", path, ": ", std::strerror(errno)));
  }
  if (::flock(fd, how | LOCK_NB) != 0) {
    const int err = errno;
    std::string message =
        err == EWOULDBLOCK
            ? absl::StrCat("data dir ", dir, " is in use by pid ", HolderPid(fd), why)
            : absl::StrCat("cannot lock ", path, ": ", std::strerror(err));
    ::close(fd);
    return absl::FailedPreconditionError(message);
  }
  return fd;
}

}  // namespace

absl::StatusOr<DirectoryLock> DirectoryLock::Acquire(const std::string& dir) {
  std::string path = dir + "/rdg.lock";
  absl::StatusOr<int> locked =
      OpenAndLock(dir, path, LOCK_EX, " (one process per data dir; stop that one first)");
  if (!locked.ok()) return locked.status();
  const int fd = *locked;
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write the lock file ", path, ": ", std::strerror(err)));
  }
  return DirectoryLock(fd, std::move(path));
}

absl::StatusOr<DirectoryLock> DirectoryLock::AcquireShared(const std::string& dir) {
  std::string path = dir + "/rdg.lock";
  absl::StatusOr<int> locked =
      OpenAndLock(dir, path, LOCK_SH,
                  ", which keeps it to itself (a gateway on its own SQLite index?): gateways "
                  "share a data dir only on one PostgreSQL index");
  if (!locked.ok()) return locked.status();
  return DirectoryLock(*locked, std::move(path));  // shared holders leave the pid file alone
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace rdg::storage
