// StagingArea: the part files of open upload sessions (DATA/uploads/<session>.part). Bytes land
// here as they arrive; on commit the file is adopted by the BlobStore (same filesystem, a hard
// link). Gateways sharing the directory (replicas on one index) tell each other which part files
// are being written by an exclusive lock on each (File::TryLock), held while it is open for
// appending.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/base/posix_file.h"

namespace rdg::storage {

class StagingArea {
 public:
  static absl::StatusOr<StagingArea> Create(const std::string& dir);

  std::string PathOf(const std::string& session_id) const;
  //! Opens the part file for appending, held (File::TryLock) until it is closed: ABORTED while
  //! another process holds it.
  absl::StatusOr<File> OpenForAppend(const std::string& session_id, bool create) const;
  //! Bytes staged so far (0 if the file does not exist).
  absl::StatusOr<int64_t> StagedBytes(const std::string& session_id) const;
  absl::Status Remove(const std::string& session_id) const;
  //! Removes the part file unless another process holds it open for appending: whether it was
  //! removed (true also when there was none).
  absl::StatusOr<bool> RemoveIfFree(const std::string& session_id) const;
  //! Whether another open file description holds the part file (false when there is none).
  bool IsHeld(const std::string& session_id) const;
  //! Session ids that have a part file.
  absl::StatusOr<std::vector<std::string>> ListSessions() const;
  //! Removes files that are not part files (e.g. left by other tools), dot-files excepted;
  //! returns how many.
  absl::StatusOr<int> RemoveStrayFiles() const;

 private:
  explicit StagingArea(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace rdg::storage
