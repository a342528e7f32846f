#include "gateway/common/storage_guard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rdg {
namespace {

std::string Mebibytes(int64_t bytes) {
  return absl::StrFormat("%.0f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

absl::StatusOr<int64_t> StorageGuard::StatvfsFreeSpace(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) {
    return absl::UnavailableError(absl::StrCat("statvfs ", path, ": ", std::strerror(errno)));
  }
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

absl::StatusOr<std::unique_ptr<StorageGuard>> StorageGuard::Start(Options options,
                                                                  FreeSpace free_space) {
  if (options.index_probe) {
    return std::unique_ptr<StorageGuard>(
        new StorageGuard(std::move(options), std::move(free_space), 0, 0));
  }
  const std::string wal = options.index_path + "-wal";
  struct stat st {};
  if (::stat(wal.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the index's write-ahead log ", wal, " is missing: ", std::strerror(errno)));
  }
  return std::unique_ptr<StorageGuard>(
      new StorageGuard(std::move(options), std::move(free_space), st.st_dev, st.st_ino));
}

StorageGuard::StorageGuard(Options options, FreeSpace free_space, dev_t wal_device, ino_t wal_inode)
    : options_(std::move(options)),
      free_space_(std::move(free_space)),
      wal_device_(wal_device),
      wal_inode_(wal_inode) {}

absl::Status StorageGuard::CheckReserve() const {
  if (options_.reserve_bytes <= 0) return absl::OkStatus();
  absl::StatusOr<int64_t> free = free_space_(options_.data_dir);
  if (!free.ok()) {
    below_reserve_ = false;
    return absl::UnavailableError(free.status().message());
  }
  below_reserve_ = *free < options_.reserve_bytes;
  if (*free < options_.reserve_bytes) {
    return absl::UnavailableError(absl::StrCat("disk below its reserve: ", Mebibytes(*free),
                                               " free on the data dir's "
                                               "filesystem, disk_reserve_mb is ",
                                               Mebibytes(options_.reserve_bytes)));
  }
  return absl::OkStatus();
}

absl::Status StorageGuard::CheckWal() const {
  const std::string wal = options_.index_path + "-wal";
  struct stat st {};
  if (::stat(wal.c_str(), &st) != 0 || st.st_dev != wal_device_ || st.st_ino != wal_inode_) {
    return absl::UnavailableError(absl::StrCat(
        "the index's write-ahead log ", wal,
        " vanished or was replaced while the gateway ran; "
        "recent commits are at risk: restart the gateway (it recovers from the index)"));
  }
  return absl::OkStatus();
}

absl::Status StorageGuard::Check() {
  absl::Status index;
  // Asked without the lock: a database that does not answer must not hold up AdmitUpload.
  const std::optional<absl::Status> probed =
      options_.index_probe ? std::optional<absl::Status>(options_.index_probe()) : std::nullopt;
  {
    absl::MutexLock lock(&mu_);
    if (probed.has_value()) {
      index_ = *probed;  // a database comes back by itself: not sticky
    } else if (!wal_lost_) {
      if (absl::Status wal = CheckWal(); !wal.ok()) {
        wal_lost_ = true;
        index_ = wal;
      } else if (::faccessat(AT_FDCWD, options_.index_path.c_str(), W_OK, AT_EACCESS) != 0) {
        index_ = absl::UnavailableError(absl::StrCat("the index ", options_.index_path,
                                                     " is not writable: ", std::strerror(errno)));
      } else {
        index_ = absl::OkStatus();
      }
    }
    index = index_;
  }
  if (!index.ok()) return index;
  return CheckReserve();
}

absl::Status StorageGuard::AdmitUpload() {
  bool index_ok;
  {
    absl::MutexLock lock(&mu_);
    index_ok = index_.ok();
  }
  absl::Status reserve = index_ok ? CheckReserve() : absl::OkStatus();
  if (index_ok && (reserve.ok() || below_reserve_.load())) return reserve;
  // The details (paths) are for the operators (/readyz, the log), not for every clinic.
  return absl::UnavailableError(
      "the gateway's storage is not safe to write now (its operators see why on /readyz); "
      "retry later");
}

}  // namespace rdg
