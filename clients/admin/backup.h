// `rdg-admin backup DIR`: an online backup pulled from a running gateway. A consistent snapshot
// of the index (SQLite's backup API, taken while the gateway serves) and every stored object it
// references, each verified against its SHA-256 before it is renamed into place. DIR has the
// data dir's layout — index.sqlite and blobs/ab/abcdef… — so restoring is copying it into a
// fresh data dir. Objects already in DIR with the right size are kept: a second backup into the
// same DIR copies only what is new. `rdg-admin backup verify DIR` checks a backup offline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rdg/v1/admin.grpc.pb.h"

namespace rdg::clients {

struct BackupSummary {
  int64_t index_bytes = 0;
  int64_t audit_seq = 0;  //!< the last audit record in the snapshot
  int64_t objects = 0;    //!< stored objects the snapshot references
  int64_t copied = 0;     //!< of those, copied now (the rest were in DIR already)
  int64_t copied_bytes = 0;
  std::vector<std::string> problems;  //!< verify: what is wrong (empty: the backup is whole)
};

//! Pulls a backup into `dir` (created 0700). Errors name what failed; nothing half-written is
//! ever left under its final name.
absl::StatusOr<BackupSummary> PullBackup(rdg::v1::AdminService::StubInterface& stub,
                                         const std::string& dir);

//! Checks a backup offline: the index's integrity, and every object it references present with
//! its SHA-256 (each read in full).
absl::StatusOr<BackupSummary> VerifyBackup(const std::string& dir);

}  // namespace rdg::clients
