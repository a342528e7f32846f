#include "storage/base/audit_chain.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "storage/base/digest.h"

namespace rdg::audit {
namespace {

void Put(std::string& out, absl::string_view field) {
  absl::StrAppend(&out, field.size(), ":", field);
}

std::string Range(int64_t first, int64_t last) {
  return first == last ? absl::StrCat("record ", first, " is")
                       : absl::StrCat("records ", first, " to ", last, " are");
}

}  // namespace

std::string GenesisLink() { return std::string(32, '\0'); }

std::string CanonicalBytes(const ChainedFields& f) {
  std::string out = "RDG-AUDIT-V1";
  Put(out, absl::StrCat(f.seq));
  Put(out, absl::StrCat(f.at_micros));
  Put(out, f.institution);
  Put(out, f.user);
  Put(out, absl::StrCat(f.role));
  Put(out, f.action);
  Put(out, f.exam_id);
  Put(out, f.detail);
  Put(out, f.outcome);
  Put(out, f.patient_id);
  Put(out, f.peer);
  Put(out, f.subject);
  return out;
}

std::string Link(absl::string_view previous_link, const ChainedFields& fields) {
  storage::Sha256 h;
  h.Update(previous_link);
  h.Update(CanonicalBytes(fields));
  return storage::ToRaw(h.Finish());
}

ChainWalker::ChainWalker(std::optional<std::string> anchor) : anchor_(std::move(anchor)) {}

std::vector<Problem> ChainWalker::Feed(const StoredRecord& r) {
  std::vector<Problem> problems;
  const int64_t seq = r.fields.seq;
  if (r.hash.size() != 32 || r.prev_hash.size() != 32) {
    // Not a link of the chain at all: the gateway links every record it writes.
    problems.push_back({Problem::Kind::kInserted, seq, seq,
                        absl::StrCat("record ", seq, " was inserted: it carries no chain link")});
    last_seq_ = seq;  // its seq is taken; the chain goes on from the record before it
    return problems;
  }
  if (Link(r.prev_hash, r.fields) != r.hash) {
    problems.push_back(
        {Problem::Kind::kAltered, seq, seq,
         absl::StrCat("record ", seq, " was altered: its content does not match its link")});
  }
  const std::optional<std::string> expected =
      records_ == 0 ? anchor_ : std::optional<std::string>(last_link_);
  const int64_t expected_seq = records_ == 0 ? (anchor_ == GenesisLink() ? 1 : seq) : last_seq_ + 1;
  if (expected.has_value() && r.prev_hash != *expected) {
    if (records_ > 0 && r.prev_hash == link_before_last_) {
      problems.push_back({Problem::Kind::kInserted, last_seq_, last_seq_,
                          absl::StrCat("record ", last_seq_, " was inserted: record ", seq,
                                       " continues from the record before it")});
    } else if (seq > expected_seq) {
      problems.push_back({Problem::Kind::kMissing, expected_seq, seq - 1,
                          absl::StrCat(Range(expected_seq, seq - 1), " missing (deleted): record ",
                                       seq, " does not continue from record ", expected_seq - 1)});
    } else {
      problems.push_back(
          {Problem::Kind::kAltered, records_ > 0 ? last_seq_ : seq, records_ > 0 ? last_seq_ : seq,
           records_ > 0 ? absl::StrCat("record ", last_seq_,
                                       " was altered and its link recomputed: "
                                       "record ",
                                       seq, " continues from another version of it")
                        : absl::StrCat("record ", seq, " does not continue from the anchor")});
    }
  } else if (seq > expected_seq) {
    // Removed from the end, then the chain went on from what was left.
    problems.push_back({Problem::Kind::kMissing, expected_seq, seq - 1,
                        absl::StrCat(Range(expected_seq, seq - 1), " missing (deleted)")});
  }
  link_before_last_ = records_ == 0 ? r.prev_hash : last_link_;
  last_link_ = r.hash;
  last_seq_ = seq;
  ++records_;
  return problems;
}

std::string CheckpointStatement(int64_t seq, absl::string_view link, int64_t signed_at_unix) {
  return absl::StrCat("RDG-AUDIT-CHECKPOINT-V1\nseq=", seq, "\nhash=", storage::HexOf(link),
                      "\nsigned_at=",
                      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(signed_at_unix),
                                       absl::UTCTimeZone()),
                      "\n");
}

bool ParseCheckpointStatement(absl::string_view statement, int64_t* seq, std::string* link_hex,
                              std::string* signed_at) {
  std::vector<absl::string_view> lines = absl::StrSplit(statement, '\n');
  if (lines.size() != 5 || lines[0] != "RDG-AUDIT-CHECKPOINT-V1" || !lines[4].empty() ||
      !absl::ConsumePrefix(&lines[1], "seq=") || !absl::ConsumePrefix(&lines[2], "hash=") ||
      !absl::ConsumePrefix(&lines[3], "signed_at=") || !absl::SimpleAtoi(lines[1], seq) ||
      lines[2].size() != 64) {
    return false;
  }
  *link_hex = std::string(lines[2]);
  *signed_at = std::string(lines[3]);
  return true;
}

}  // namespace rdg::audit
