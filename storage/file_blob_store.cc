#include "storage/file_blob_store.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/base/posix_file.h"

namespace rdg::storage {
namespace {

class FileBlobReader final : public BlobReader {
 public:
  FileBlobReader(File file, int64_t size) : file_(std::move(file)), size_(size) {}
  int64_t Size() const override { return size_; }
  absl::StatusOr<size_t> ReadAt(int64_t offset, char* buf, size_t n) const override {
    return file_.ReadAt(offset, buf, n);
  }

 private:
  File file_;
  int64_t size_;
};

//! The byte of ROOT/holds that stands for `digest` (its first five bytes: 2^40 bytes, so two
//! blobs rarely share one; when they do, a removal leaves a blob for later, or a hold waits for
//! another blob's removal).
int64_t HoldByteOf(const Digest& digest) {
  int64_t offset = 0;
  for (int i = 0; i < 5; ++i) offset = (offset << 8) | digest[i];
  return offset;
}

//! Its own open ROOT/holds (a lock belongs to one open file description) with its byte
//! share-locked: the lock ends when the descriptor closes.
class FileHold final : public BlobStore::Hold {
 public:
  explicit FileHold(File file) : file_(std::move(file)) {}

 private:
  File file_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BlobReader>> OpenFileReader(const std::string& path) {
  auto file = File::OpenForRead(path);
  if (!file.ok()) return file.status();
  auto size = file->Size();
  if (!size.ok()) return size.status();
  return std::make_unique<FileBlobReader>(*std::move(file), *size);
}

absl::StatusOr<std::unique_ptr<FileBlobStore>> FileBlobStore::Create(const std::string& root) {
  if (auto s = MakeDirectories(root); !s.ok()) return s;
  for (int i = 0; i < 256; ++i) {
    if (auto s = MakeDirectories(absl::StrFormat("%s/%02x", root, i)); !s.ok()) return s;
  }
  auto store = std::unique_ptr<FileBlobStore>(new FileBlobStore(root));
  if (auto holds = File::OpenForAppend(store->holds_, /*create=*/true); !holds.ok()) {
    return holds.status();
  }
  if (auto s = SyncDirectory(root); !s.ok()) return s;
  return store;
}

std::string FileBlobStore::DirOf(const Digest& digest) const {
  return absl::StrFormat("%s/%02x", root_, digest[0]);
}

std::string FileBlobStore::PathOf(const Digest& digest) const {
  return absl::StrCat(DirOf(digest), "/", ToHex(digest));
}

absl::Status FileBlobStore::Adopt(const std::string& path, const Digest& digest) {
  const std::string target = PathOf(digest);
  if (Exists(digest)) return absl::OkStatus();  // content-addressed: same bytes already durable
  {
    auto file = File::OpenForRead(path);
    if (!file.ok()) return file.status();
    if (auto s = file->Sync(); !s.ok()) return s;
  }
  if (auto s = LinkFile(path, target); !s.ok()) return s;
  return SyncDirectory(DirOf(digest));
}

std::vector<absl::Status> FileBlobStore::AdoptAll(absl::Span<const Adoption> files) {
  std::vector<absl::Status> results(files.size());
  if (files.empty()) return results;
  // A failed sync fails every file still standing: any of them may be lost.
  auto fail_standing = [&](const absl::Status& why) {
    for (absl::Status& r : results) {
      if (r.ok()) r = why;
    }
  };
  // 1. Every file's bytes and size on disk: one syncfs writes them all back. syncfs reports a
  //    writeback error once, for the whole file system, to whoever asks first (perhaps about
  //    another upload's file), so each file is then asked for its own.
  if (absl::Status s = SyncFileSystem(root_); !s.ok()) {
    fail_standing(s);
    return results;
  }
  for (size_t i = 0; i < files.size(); ++i) results[i] = WaitForWriteback(files[i].path);
  // 2. The names of files not stored yet (content-addressed: a stored name has the same bytes).
  for (size_t i = 0; i < files.size(); ++i) {
    if (results[i].ok() && !Exists(files[i].digest)) {
      results[i] = LinkFile(files[i].path, PathOf(files[i].digest));
    }
  }
  // 3. The names durable, those linked before included (whatever became of the call that linked
  //    them: a crash between its link and its sync): syncfs writes them, and an fsync of the
  //    root then flushes the device's cache after those writes (ext4 without a journal flushes
  //    before the last writes of a syncfs).
  absl::Status synced = SyncFileSystem(root_);
  if (synced.ok()) synced = SyncDirectory(root_);
  if (!synced.ok()) fail_standing(synced);
  return results;
}

absl::StatusOr<std::unique_ptr<BlobReader>> FileBlobStore::Open(const Digest& digest) const {
  auto file = File::OpenForRead(PathOf(digest));
  if (!file.ok()) return file.status();
  auto size = file->Size();
  if (!size.ok()) return size.status();
  return std::make_unique<FileBlobReader>(*std::move(file), *size);
}

bool FileBlobStore::Exists(const Digest& digest) const {
  return ::access(PathOf(digest).c_str(), F_OK) == 0;
}

absl::Status FileBlobStore::Remove(const Digest& digest) {
  if (auto s = RemoveFile(PathOf(digest)); !s.ok()) return s;
  return SyncDirectory(DirOf(digest));
}

absl::StatusOr<std::unique_ptr<BlobStore::Hold>> FileBlobStore::HoldBlob(const Digest& digest) {
  auto holds = File::OpenForRead(holds_);
  if (absl::IsNotFound(holds.status())) {  // not "the blob was removed": the store is damaged
    return absl::InternalError(absl::StrCat(holds_, " is missing; restart the gateway"));
  }
  if (!holds.ok()) return holds.status();
  if (auto s = holds->LockShared(HoldByteOf(digest), 1); !s.ok()) return s;
  // No removal runs now and none can start: whether the blob is there stays true while held.
  // Asked by opening it, not access(2): an NFS client answers access from its cached directory
  // entries (for up to a minute), while open revalidates with the server (close-to-open).
  auto blob = File::OpenForRead(PathOf(digest));
  if (absl::IsNotFound(blob.status())) {
    return absl::NotFoundError("the stored copy was removed");
  }
  if (!blob.ok()) return blob.status();
  auto linked = blob->StillNamed();
  if (!linked.ok()) return linked.status();
  if (!*linked) return absl::NotFoundError("the stored copy was removed");
  return std::make_unique<FileHold>(*std::move(holds));
}

absl::StatusOr<bool> FileBlobStore::RemoveUnreferenced(
    const Digest& digest, absl::FunctionRef<absl::StatusOr<bool>()> referenced) {
  auto holds = File::OpenForAppend(holds_, /*create=*/false);
  if (!holds.ok()) return holds.status();
  if (absl::Status s = holds->TryLock(HoldByteOf(digest), 1); absl::IsAborted(s)) {
    return false;  // an upload holds it: its row is on the way
  } else if (!s.ok()) {
    return s;
  }
  if (!Exists(digest)) return false;
  auto in_use = referenced();
  if (!in_use.ok()) return in_use.status();
  if (*in_use) return false;
  if (auto s = Remove(digest); !s.ok()) return s;
  return true;
}

}  // namespace rdg::storage
