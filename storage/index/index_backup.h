// IndexBackup: a consistent copy of the whole index, for a backup.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class IndexBackup {
 public:
  virtual ~IndexBackup() = default;

  //! A consistent copy of the whole index as of now into a new file `path` (online: writers
  //! carry on), for a backup. Returns the last audit record's seq in the copy.
  virtual absl::StatusOr<int64_t> SnapshotTo(const std::string& path) = 0;
};

}  // namespace rdg::storage
