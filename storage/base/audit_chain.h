// The audit log as a hash chain (certificate-transparency style): each record carries the
// SHA-256 of its predecessor's link and of its own canonical encoding, so that changing, removing
// or slipping in a record breaks the chain where it happened. The gateway links records as it
// appends them (storage/), `rdg-admin audit verify` walks the chain it exports (clients/); both
// use these functions, so the encoding exists once.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace rdg::audit {

//! One audit record as the chain covers it: every column of audit_log but the two hashes.
struct ChainedFields {
  int64_t seq = 0;
  int64_t at_micros = 0;  //!< Unix microseconds
  std::string institution;
  std::string user;
  int32_t role = 0;
  std::string action;
  std::string exam_id;
  std::string detail;
  std::string outcome;     //!< "" (success) or the refusal's status code name
  std::string patient_id;  //!< the patient participant (platform patient id), when known
  std::string peer;        //!< the caller's address
  std::string subject;     //!< the caller's certificate subject
};

//! The link of the first record's predecessor: 32 zero bytes.
std::string GenesisLink();

//! The canonical encoding: "RDG-AUDIT-V1", then each field as its decimal length, ':' and its
//! bytes (numbers in decimal), in the order of ChainedFields.
std::string CanonicalBytes(const ChainedFields& fields);

//! This record's link (32 raw bytes): SHA-256(previous link ‖ CanonicalBytes(fields)).
std::string Link(absl::string_view previous_link, const ChainedFields& fields);

//! A record as read back: its fields and the two links it carries (raw bytes; empty when the
//! row has none).
struct StoredRecord {
  ChainedFields fields;
  std::string prev_hash;
  std::string hash;
};

//! One break of the chain.
struct Problem {
  enum class Kind { kAltered, kMissing, kInserted };
  Kind kind;
  int64_t seq = 0;       //!< the record altered or inserted, or the first one missing
  int64_t last_seq = 0;  //!< kMissing: the last one missing
  std::string message;   //!< for people, e.g. "record 42 was altered: …"
};

//! Walks records in seq order and names every break. Feed all records from the first one to
//! check; what it says about a record can depend on those before it (a record that chains past
//! its predecessor shows that the predecessor was slipped in).
class ChainWalker {
 public:
  //! `anchor`: the link the first record fed must continue from — GenesisLink() from the start
  //! of the log; none to take the first record's own prev_hash on trust (verifying from the
  //! middle). `first_seq`: the seq the first record must have (1, or where verifying starts).
  explicit ChainWalker(std::optional<std::string> anchor, int64_t first_seq = 1);

  //! Checks the next record; returns the problems it reveals (usually none).
  std::vector<Problem> Feed(const StoredRecord& record);

  int64_t records() const { return records_; }
  //! The link of the last linked record fed (its stored hash), and the last seq (0 before any).
  const std::string& last_link() const { return last_link_; }
  int64_t last_seq() const { return last_seq_; }

 private:
  //! Links of the last records and their seqs, to tell which record a stray link continues from.
  static constexpr size_t kRemembered = 1 << 16;
  void Remember(const std::string& link, int64_t seq);

  std::optional<std::string> anchor_;
  int64_t first_seq_;
  bool started_ = false;
  int64_t records_ = 0;  //!< linked records fed
  int64_t last_seq_ = 0;
  std::string last_link_;
  absl::flat_hash_map<std::string, int64_t> seen_;
  std::deque<std::string> order_;
};

//! The text a checkpoint signs: "RDG-AUDIT-CHECKPOINT-V1\nseq=N\nhash=<hex>\nsigned_at=<UTC
//! RFC 3339>\nprevious=<seq>:<hex SHA-256 of the previous checkpoint's statement>\n" (previous=0:
//! for the first), so that checkpoints form a chain of their own and removing one shows.
std::string CheckpointStatement(int64_t seq, absl::string_view link, int64_t signed_at_unix,
                                int64_t previous_seq, absl::string_view previous_statement);

//! The fields of a checkpoint statement: false when `statement` is not one.
struct CheckpointFields {
  int64_t seq = 0;
  std::string link_hex;
  std::string signed_at;
  int64_t previous_seq = 0;
  std::string previous_hex;  //!< empty for the first checkpoint
};
bool ParseCheckpointStatement(absl::string_view statement, CheckpointFields* fields);

//! SHA-256 of a checkpoint statement, lower-case hex (what the next checkpoint names).
std::string StatementDigestHex(absl::string_view statement);

}  // namespace rdg::audit
