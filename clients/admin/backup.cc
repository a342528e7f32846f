#include "clients/admin/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "clients/common/connection.h"
#include "storage/base/digest.h"

namespace rdg::clients {
namespace {

constexpr int kBlobsPerCall = 64;  // the gateway's limit per BackupBlobs call

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

//! Makes what happened in `dir` (a rename, a new entry) durable.
absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", dir);
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced ? absl::OkStatus() : Errno("cannot sync", dir);
}

std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }

//! `path` as a directory of this user's (made 0700 when new; never through a symbolic link).
absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0) return SyncDir(Parent(path));
  if (errno != EEXIST) return Errno("cannot create", path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Errno("cannot inspect", path);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " is not a directory of yours (a symbolic link, a file or another "
                     "user's): choose another backup folder"));
  }
  return absl::OkStatus();
}

//! Where the blob of `hex` lives under DIR, as in the gateway's data dir (blobs/ab/abcdef…).
std::string BlobPath(const std::string& dir, const std::string& hex) {
  return absl::StrCat(dir, "/blobs/", hex.substr(0, 2), "/", hex);
}

//! One object arriving in chunks: written to PATH.partial, checked, fsynced, renamed.
class Incoming {
 public:
  Incoming(std::string path, const rdg::v1::StoredObject& object)
      : path_(std::move(path)), size_(object.size()), sha256_(object.sha256()) {}
  ~Incoming() {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) ::unlink(Partial().c_str());
  }

  absl::Status Open() {
    ::unlink(Partial().c_str());  // a leftover of an interrupted run
    fd_ = ::open(Partial().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return fd_ < 0 ? Errno("cannot create", Partial()) : absl::OkStatus();
  }
  absl::Status Append(int64_t offset, const std::string& data) {
    if (offset != written_ || written_ + static_cast<int64_t>(data.size()) > size_) {
      return absl::DataLossError(absl::StrCat(path_, ": the gateway sent bytes out of order"));
    }
    for (size_t at = 0; at < data.size();) {
      const ssize_t n = ::write(fd_, data.data() + at, data.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("cannot write", Partial());
      at += static_cast<size_t>(n);
    }
    hasher_.Update(data);
    written_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }
  bool complete() const { return written_ == size_; }
  int64_t size() const { return size_; }
  //! Checks the SHA-256 the gateway named, makes the bytes durable and renames them into place.
  absl::Status Finish() {
    if (storage::ToRaw(hasher_.Finish()) != sha256_) {
      return absl::DataLossError(absl::StrCat(path_,
                                              ": the bytes received do not match their "
                                              "SHA-256; nothing was kept"));
    }
    if (::fsync(fd_) != 0) return Errno("cannot sync", Partial());
    ::close(fd_);
    fd_ = -1;
    if (::rename(Partial().c_str(), path_.c_str()) != 0) return Errno("cannot rename", Partial());
    done_ = true;
    return SyncDir(Parent(path_));
  }

 private:
  std::string Partial() const { return path_ + ".partial"; }
  const std::string path_;
  const int64_t size_;
  const std::string sha256_;
  storage::Sha256 hasher_;
  int fd_ = -1;
  int64_t written_ = 0;
  bool done_ = false;
};

//! Writes every object of a stream to the path `place` gives it; counts objects and bytes.
absl::Status Receive(
    grpc::ClientReaderInterface<rdg::v1::ObjectChunk>& reader,
    const std::function<absl::StatusOr<std::string>(const rdg::v1::StoredObject&)>& place,
    int64_t& objects, int64_t& bytes) {
  std::unique_ptr<Incoming> current;
  rdg::v1::ObjectChunk chunk;
  absl::Status problem;
  while (problem.ok() && reader.Read(&chunk)) {
    if (chunk.has_object()) {
      if (current != nullptr) {
        problem = absl::DataLossError("the gateway started an object before the last ended");
        break;
      }
      absl::StatusOr<std::string> path = place(chunk.object());
      if (!path.ok()) {
        problem = path.status();
        break;
      }
      current = std::make_unique<Incoming>(*path, chunk.object());
      problem = current->Open();
    }
    if (problem.ok() && current == nullptr) {
      problem = absl::DataLossError("the gateway sent bytes of no object");
    }
    if (problem.ok()) problem = current->Append(chunk.offset(), chunk.data());
    if (problem.ok() && current->complete()) {
      problem = current->Finish();
      ++objects;
      bytes += current->size();
      current.reset();
    }
  }
  if (!problem.ok()) return problem;  // the stream is abandoned with the context
  if (grpc::Status s = reader.Finish(); !s.ok()) {
    return absl::UnavailableError(DescribeRpcError(s));
  }
  if (current != nullptr) return absl::DataLossError("the stream ended inside an object");
  return absl::OkStatus();
}

//! What the snapshot references, and its last audit record.
struct IndexFacts {
  std::vector<std::pair<std::string, int64_t>> blobs;  //!< SHA-256 hex, size
  int64_t audit_seq = 0;
};

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::StatusOr<IndexFacts> ReadIndex(const std::string& path) {
  sqlite3* db = nullptr;
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> owner(nullptr, sqlite3_close_v2);
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return absl::DataLossError(absl::StrCat("cannot open ", path));
  }
  owner.reset(db);
  // The file came over the network: no trust in its schema (triggers, views) beyond reading.
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_exec(db, "PRAGMA trusted_schema=OFF", nullptr, nullptr, nullptr);
  IndexFacts facts;
  std::string integrity;
  auto each = [db](const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
      return absl::DataLossError(sqlite3_errmsg(db));
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? absl::OkStatus() : absl::DataLossError(sqlite3_errmsg(db));
  };
  auto text = [](sqlite3_stmt* s, int col) {
    const auto* p = sqlite3_column_text(s, col);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  };
  absl::Status s = each("PRAGMA integrity_check", [&](sqlite3_stmt* st) {
    if (integrity.empty()) integrity = text(st, 0);
  });
  if (!s.ok()) return s;
  if (integrity != "ok") {
    return absl::DataLossError(absl::StrCat(path, " fails SQLite's integrity check: ", integrity));
  }
  s = each("SELECT sha256, MAX(size) FROM objects GROUP BY sha256 ORDER BY sha256",
           [&](sqlite3_stmt* st) {
             facts.blobs.emplace_back(text(st, 0), sqlite3_column_int64(st, 1));
           });
  if (!s.ok()) return s;
  for (const auto& [hex, size] : facts.blobs) {
    if (!IsSha256Hex(hex)) {
      return absl::DataLossError(
          absl::StrCat(path, " names an object by \"", hex.substr(0, 80), "\", not a SHA-256"));
    }
  }
  s = each("SELECT COALESCE(MAX(seq), 0) FROM audit_log",
           [&](sqlite3_stmt* st) { facts.audit_seq = sqlite3_column_int64(st, 0); });
  if (!s.ok()) return s;
  return facts;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

}  // namespace

absl::StatusOr<BackupSummary> PullBackup(rdg::v1::AdminService::StubInterface& stub,
                                         const std::string& dir) {
  for (const std::string& d : {dir, dir + "/blobs"}) {
    if (absl::Status s = MakeDir(d); !s.ok()) return s;
  }
  if (FileSize(dir + "/rdg.lock") >= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is a gateway's data dir: back up into a folder of its own"));
  }
  BackupSummary summary;
  // 1. The index, as one consistent snapshot: index.sqlite.new until every object it references
  //    is here too, so an interrupted run leaves the previous backup whole.
  const std::string fresh = dir + "/index.sqlite.new";
  {
    grpc::ClientContext ctx;
    auto reader = stub.BackupIndex(&ctx, rdg::v1::BackupIndexRequest());
    int64_t objects = 0;
    absl::Status s = Receive(
        *reader,
        [&fresh](const rdg::v1::StoredObject&) -> absl::StatusOr<std::string> { return fresh; },
        objects, summary.index_bytes);
    if (!s.ok()) {
      ctx.TryCancel();
      return s;
    }
    if (objects != 1) return absl::DataLossError("the gateway sent no index snapshot");
  }
  absl::StatusOr<IndexFacts> facts = ReadIndex(fresh);
  if (!facts.ok()) return facts.status();
  summary.audit_seq = facts->audit_seq;
  summary.objects = static_cast<int64_t>(facts->blobs.size());
  // 2. What it references and DIR lacks (content-addressed: the right size means the same
  //    bytes, which --verify re-reads), asked for in batches; only those are accepted.
  std::vector<std::pair<std::string, int64_t>> missing;
  for (const auto& [hex, size] : facts->blobs) {
    if (FileSize(BlobPath(dir, hex)) != size) missing.emplace_back(hex, size);
  }
  for (size_t at = 0; at < missing.size(); at += kBlobsPerCall) {
    rdg::v1::BackupBlobsRequest request;
    std::map<std::string, int64_t> wanted;
    for (size_t i = at; i < std::min(missing.size(), at + kBlobsPerCall); ++i) {
      request.add_sha256(missing[i].first);
      wanted.insert(missing[i]);
    }
    grpc::ClientContext ctx;
    auto reader = stub.BackupBlobs(&ctx, request);
    absl::Status s = Receive(
        *reader,
        [&dir, &wanted](const rdg::v1::StoredObject& o) -> absl::StatusOr<std::string> {
          if (o.sha256().size() != 32) return absl::DataLossError("an object without SHA-256");
          storage::Digest digest;
          std::copy(o.sha256().begin(), o.sha256().end(), digest.begin());
          const std::string hex = storage::ToHex(digest);
          auto it = wanted.find(hex);
          if (it == wanted.end() || it->second != o.size()) {
            return absl::DataLossError(
                absl::StrCat("the gateway sent object ", hex, " (", o.size(),
                             " bytes), which this backup did not ask for at that size"));
          }
          if (absl::Status made = MakeDir(absl::StrCat(dir, "/blobs/", hex.substr(0, 2)));
              !made.ok()) {
            return made;
          }
          return BlobPath(dir, hex);
        },
        summary.copied, summary.copied_bytes);
    if (!s.ok()) {
      ctx.TryCancel();
      return s;
    }
    for (const auto& [hex, size] : wanted) {
      if (FileSize(BlobPath(dir, hex)) != size) {
        return absl::DataLossError(absl::StrCat("the gateway did not send object ", hex,
                                                "; the previous backup in ", dir, " is kept"));
      }
    }
  }
  // 3. Complete: the new index replaces the previous one.
  if (::rename(fresh.c_str(), (dir + "/index.sqlite").c_str()) != 0) {
    return Errno("cannot rename", fresh);
  }
  if (absl::Status s = SyncDir(dir); !s.ok()) return s;
  return summary;
}

absl::StatusOr<BackupSummary> VerifyBackup(const std::string& dir) {
  BackupSummary summary;
  summary.index_bytes = FileSize(dir + "/index.sqlite");
  if (summary.index_bytes < 0) {
    return absl::NotFoundError(absl::StrCat(dir, "/index.sqlite is missing: not a backup"));
  }
  absl::StatusOr<IndexFacts> facts = ReadIndex(dir + "/index.sqlite");
  if (!facts.ok()) return facts.status();
  summary.audit_seq = facts->audit_seq;
  summary.objects = static_cast<int64_t>(facts->blobs.size());
  for (const auto& [hex, size] : facts->blobs) {
    const std::string path = BlobPath(dir, hex);
    absl::StatusOr<storage::Digest> digest = storage::Sha256::OfFile(path);
    if (const int64_t found = FileSize(path); found >= 0 && found != size) {
      summary.problems.push_back(
          absl::StrCat(path, ": ", found, " bytes where the index says ", size));
    } else if (!digest.ok()) {
      summary.problems.push_back(absl::StrCat(path, ": missing or unreadable"));
    } else if (storage::ToHex(*digest) != hex) {
      summary.problems.push_back(absl::StrCat(path, ": its bytes do not match their SHA-256"));
    }
  }
  return summary;
}

}  // namespace rdg::clients
