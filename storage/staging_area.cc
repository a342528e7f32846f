#include "storage/staging_area.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rdg::storage {
namespace {
constexpr absl::string_view kSuffix = ".part";
}  // namespace

absl::StatusOr<StagingArea> StagingArea::Create(const std::string& dir) {
  if (auto s = MakeDirectories(dir); !s.ok()) return s;
  return StagingArea(dir);
}

std::string StagingArea::PathOf(const std::string& session_id) const {
  return absl::StrCat(dir_, "/", session_id, kSuffix);
}

absl::StatusOr<File> StagingArea::OpenForAppend(const std::string& session_id, bool create) const {
  // A part file another gateway removes (expiry, a commit) between the open and the lock is not
  // the session's any more: open the name again (a new file when creating), never write there.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto file = File::OpenForAppend(PathOf(session_id), create);
    if (!file.ok()) return file.status();
    if (absl::Status held = file->TryLock(); !held.ok()) return held;
    auto named = file->StillNamed();
    if (!named.ok()) return named.status();
    if (*named) return file;
  }
  return absl::AbortedError(absl::StrCat("the part file of upload ", session_id,
                                         " keeps being removed by another gateway"));
}

absl::StatusOr<int64_t> StagingArea::StagedBytes(const std::string& session_id) const {
  auto size = FileSize(PathOf(session_id));
  if (absl::IsNotFound(size.status())) return 0;
  return size;
}

absl::Status StagingArea::Remove(const std::string& session_id) const {
  return RemoveFile(PathOf(session_id));
}

bool StagingArea::IsHeld(const std::string& session_id) const {
  auto file = File::OpenForAppend(PathOf(session_id), /*create=*/false);
  return file.ok() && absl::IsAborted(file->TryLock());
}

absl::StatusOr<bool> StagingArea::RemoveIfFree(const std::string& session_id) const {
  auto file = File::OpenForAppend(PathOf(session_id), /*create=*/false);
  if (absl::IsNotFound(file.status())) return true;
  if (!file.ok()) return file.status();
  if (absl::Status held = file->TryLock(); !held.ok()) {
    if (absl::IsAborted(held)) return false;
    return held;
  }
  // Held: a writer that opens it from now on finds the name gone, or (opened already) waits.
  absl::Status removed = RemoveFile(PathOf(session_id));
  if (absl::IsNotFound(removed)) return true;
  if (!removed.ok()) return removed;
  return true;
}

absl::StatusOr<std::vector<std::string>> StagingArea::ListSessions() const {
  auto names = ListFiles(dir_);
  if (!names.ok()) return names.status();
  std::vector<std::string> ids;
  for (const auto& name : *names) {
    if (absl::EndsWith(name, kSuffix)) ids.push_back(name.substr(0, name.size() - kSuffix.size()));
  }
  return ids;
}

absl::StatusOr<int> StagingArea::RemoveStrayFiles() const {
  auto names = ListFiles(dir_);
  if (!names.ok()) return names.status();
  int removed = 0;
  for (const auto& name : *names) {
    if (absl::EndsWith(name, kSuffix)) continue;
    // Dot-files are not ours to sweep on a shared directory: another replica's start-up probes,
    // and NFS's names (.nfsXXXX) for removed files still open, which only the server removes.
    if (absl::StartsWith(name, ".")) continue;
    if (auto s = RemoveFile(absl::StrCat(dir_, "/", name)); !s.ok()) return s;
    ++removed;
  }
  return removed;
}

}  // namespace rdg::storage
