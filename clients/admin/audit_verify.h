// `rdg-admin audit verify`: walks the audit log the gateway exports (ExportAudit, in pages),
// recomputes its hash chain and checks every signed checkpoint against the platform CA — on the
// administrator's machine, trusting nothing the gateway says about itself.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rdg/v1/admin.pb.h"

namespace rdg::clients {

struct AuditVerification {
  int64_t records = 0;  //!< records checked
  int64_t first_seq = 0;
  int64_t last_seq = 0;
  int64_t checkpoints = 0;            //!< checkpoints whose signature and link held
  int64_t last_checkpoint_seq = 0;    //!< the last of those (0: none)
  std::string last_checkpoint_time;   //!< its signed_at, RFC 3339
  std::vector<std::string> problems;  //!< in seq order; empty: the chain holds
};

//! One page of the export from `from_seq` on.
using FetchAuditPage =
    std::function<absl::StatusOr<rdg::v1::ExportAuditResponse>(int64_t from_seq)>;

//! Checks the records from `from_seq` (1: from the first, anchored at the genesis link; later:
//! that record's own prev_hash taken on trust) and every checkpoint among them, whose signature
//! must be the gateway's under `ca_path` at its signed_at and whose link must be the recomputed
//! one. Errors only when a page cannot be fetched.
absl::StatusOr<AuditVerification> VerifyAuditChain(const FetchAuditPage& fetch, int64_t from_seq,
                                                   const std::string& ca_path);

}  // namespace rdg::clients
