#include "storage/base/posix_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "storage/base/random.h"

namespace rdg::storage {
namespace {

absl::Status ErrnoStatus(absl::string_view what, const std::string& path, int err) {
  std::string msg = absl::StrCat(what, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  // A full disk passes (space is freed, the volume grows): callers retry, nothing is final. The
  // message goes to clients, so it names the condition, not the gateway's paths.
  if (err == ENOSPC || err == EDQUOT) {
    return absl::UnavailableError(
        absl::StrCat("the gateway's storage is full (", strerror(err), "); retry later"));
  }
  return absl::InternalError(msg);
}

}  // namespace

absl::StatusOr<File> File::OpenForAppend(const std::string& path, bool create) {
  int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  return File(fd, path);
}

absl::StatusOr<File> File::OpenForRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  return File(fd, path);
}

File::File(File&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status File::Append(absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("write", path_, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> File::ReadAt(int64_t offset, char* buf, size_t n) const {
  for (;;) {
    ssize_t got = ::pread(fd_, buf, n, offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoStatus("read", path_, errno);
    return static_cast<size_t>(got);
  }
}

absl::Status File::Sync() {
  if (::fsync(fd_) != 0) return ErrnoStatus("fsync", path_, errno);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus("stat", path_, errno);
  return static_cast<int64_t>(st.st_size);
}

absl::Status File::Truncate(int64_t size) {
  if (::ftruncate(fd_, size) != 0) return ErrnoStatus("truncate", path_, errno);
  return absl::OkStatus();
}

namespace {

//! An open file description lock of bytes [start, start + length) (length 0: to the end, and
//! beyond). It belongs to its descriptor alone (closing another one on the same file in this
//! process does not drop it, unlike a POSIX record lock), and the Linux NFS client takes it on
//! the server as a lock of the same bytes.
struct flock RangeOf(short type, int64_t start, int64_t length) {
  struct flock range {};
  range.l_type = type;
  range.l_whence = SEEK_SET;
  range.l_start = start;
  range.l_len = length;
  return range;
}

}  // namespace

absl::Status File::TryLock(int64_t start, int64_t length) {
  struct flock range = RangeOf(F_WRLCK, start, length);
  if (::fcntl(fd_, F_OFD_SETLK, &range) == 0) return absl::OkStatus();
  if (errno == EAGAIN || errno == EACCES) {
    return absl::AbortedError(absl::StrCat(path_, " is held by another"));
  }
  return ErrnoStatus("fcntl(F_OFD_SETLK)", path_, errno);
}

absl::Status File::LockShared(int64_t start, int64_t length) {
  struct flock range = RangeOf(F_RDLCK, start, length);
  while (::fcntl(fd_, F_OFD_SETLKW, &range) != 0) {
    if (errno != EINTR) return ErrnoStatus("fcntl(F_OFD_SETLKW)", path_, errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> File::StillNamed() const {
  struct stat open {
  }, named{};
  if (::fstat(fd_, &open) != 0) return ErrnoStatus("fstat", path_, errno);
  if (::stat(path_.c_str(), &named) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("stat", path_, errno);
  }
  return open.st_dev == named.st_dev && open.st_ino == named.st_ino;
}

namespace {

//! Opens `path` with `flags`, runs `sync` (fsync, syncfs) on it and closes it.
absl::Status SyncThrough(const std::string& path, int flags, int (*sync)(int),
                         absl::string_view what) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  int rc = sync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(what, path, err);
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncDirectory(const std::string& dir) {
  return SyncThrough(dir, O_RDONLY | O_DIRECTORY, ::fsync, "fsync directory");
}

absl::Status SyncFileSystem(const std::string& path) {
  return SyncThrough(path, O_RDONLY, ::syncfs, "syncfs of the file system of");
}

absl::Status WaitForWriteback(const std::string& path) {
  return SyncThrough(
      path, O_RDONLY,
      +[](int fd) {
        return ::sync_file_range(
            fd, 0, 0,
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      },
      "writeback of");
}

absl::Status MakeDirectories(const std::string& dir) {
  std::string partial;
  for (size_t pos = 0; pos != std::string::npos;) {
    size_t next = dir.find('/', pos + 1);
    partial = dir.substr(0, next);
    pos = next;
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", partial, errno);
    }
  }
  return absl::OkStatus();
}

namespace {

//! Unique among gateways sharing a directory (replicas in containers are all PID 1).
std::string ProbeSuffix() { return absl::StrCat(::getpid(), "-", RandomHex(8)); }

}  // namespace

absl::Status ProbeWritable(const std::string& dir) {
  const std::string probe = absl::StrCat(dir, "/.rdg-write-probe-", ProbeSuffix());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    constexpr char kByte = '\n';
    if (::write(fd, &kByte, 1) != 1 || ::fsync(fd) != 0) err = errno;
    ::close(fd);
    ::unlink(probe.c_str());
  }
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("directory ", dir, " is not writable: ", strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status ProbeHardLink(const std::string& from_dir, const std::string& to_dir) {
  const std::string name = absl::StrCat("/.rdg-link-probe-", ProbeSuffix());
  const std::string from = from_dir + name, to = to_dir + name;
  const int fd = ::open(from.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create", from, errno);
  ::close(fd);
  const int err = ::link(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  ::unlink(to.c_str());
  ::unlink(from.c_str());
  if (err != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a file in ", from_dir, " cannot be hard-linked into ", to_dir, " (", strerror(err),
        "): both must be on one file system and one mount (uploads become blobs by link(2))"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RestrictToOwner(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return ErrnoStatus("stat", path, errno);
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0) return false;
  if (::chmod(path.c_str(), st.st_mode & S_IRWXU) != 0) return ErrnoStatus("chmod", path, errno);
  return true;
}

absl::Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from, errno);
  return absl::OkStatus();
}

absl::Status LinkFile(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) != 0 && errno != EEXIST)
    return ErrnoStatus("link", from, errno);
  return absl::OkStatus();
}

absl::Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink", path, errno);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type == DT_REG) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

absl::StatusOr<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, absl::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " ", path, ": ", strerror(errno)));
  }
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::NotFoundError(
          absl::StrCat("cannot read ", what, " ", path, ": ", strerror(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace rdg::storage
