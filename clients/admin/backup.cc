#include "clients/admin/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "clients/common/connection.h"
#include "storage/base/digest.h"

namespace rdg::clients {
namespace {

constexpr int kBlobsPerCall = 64;  // the gateway's limit per BackupBlobs call

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", path);
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
    fd_ = ::open(Partial().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
    return absl::OkStatus();
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
  std::vector<std::string> blobs;  //!< SHA-256 hex
  int64_t audit_seq = 0;
};

absl::StatusOr<IndexFacts> ReadIndex(const std::string& path) {
  sqlite3* db = nullptr;
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> owner(nullptr, sqlite3_close_v2);
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return absl::DataLossError(absl::StrCat("cannot open ", path));
  }
  owner.reset(db);
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
  s = each("SELECT DISTINCT sha256 FROM objects ORDER BY sha256",
           [&](sqlite3_stmt* st) { facts.blobs.push_back(text(st, 0)); });
  if (!s.ok()) return s;
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
  BackupSummary summary;
  // 1. The index, as one consistent snapshot.
  {
    grpc::ClientContext ctx;
    auto reader = stub.BackupIndex(&ctx, rdg::v1::BackupIndexRequest());
    int64_t objects = 0;
    absl::Status s = Receive(
        *reader,
        [&dir](const rdg::v1::StoredObject&) -> absl::StatusOr<std::string> {
          return dir + "/index.sqlite";
        },
        objects, summary.index_bytes);
    if (!s.ok()) {
      ctx.TryCancel();
      return s;
    }
    if (objects != 1) return absl::DataLossError("the gateway sent no index snapshot");
  }
  absl::StatusOr<IndexFacts> facts = ReadIndex(dir + "/index.sqlite");
  if (!facts.ok()) return facts.status();
  summary.audit_seq = facts->audit_seq;
  summary.objects = static_cast<int64_t>(facts->blobs.size());
  // 2. The objects it references that DIR lacks (content-addressed: present means the same).
  std::vector<std::string> missing;
  for (const std::string& hex : facts->blobs) {
    if (FileSize(BlobPath(dir, hex)) < 0) missing.push_back(hex);
  }
  for (size_t at = 0; at < missing.size(); at += kBlobsPerCall) {
    rdg::v1::BackupBlobsRequest request;
    for (size_t i = at; i < std::min(missing.size(), at + kBlobsPerCall); ++i) {
      request.add_sha256(missing[i]);
    }
    grpc::ClientContext ctx;
    auto reader = stub.BackupBlobs(&ctx, request);
    absl::Status s = Receive(
        *reader,
        [&dir](const rdg::v1::StoredObject& o) -> absl::StatusOr<std::string> {
          if (o.sha256().size() != 32) return absl::DataLossError("an object without SHA-256");
          storage::Digest digest;
          std::copy(o.sha256().begin(), o.sha256().end(), digest.begin());
          const std::string hex = storage::ToHex(digest);
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
  }
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
  for (const std::string& hex : facts->blobs) {
    const std::string path = BlobPath(dir, hex);
    absl::StatusOr<storage::Digest> digest = storage::Sha256::OfFile(path);
    if (!digest.ok()) {
      summary.problems.push_back(absl::StrCat(path, ": missing or unreadable"));
    } else if (storage::ToHex(*digest) != hex) {
      summary.problems.push_back(absl::StrCat(path, ": its bytes do not match their SHA-256"));
    }
  }
  return summary;
}

}  // namespace rdg::clients
