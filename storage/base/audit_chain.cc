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

ChainWalker::ChainWalker(std::optional<std::string> anchor, int64_t first_seq)
    : anchor_(std::move(anchor)), first_seq_(first_seq) {}

void ChainWalker::Remember(const std::string& link, int64_t seq) {
  seen_[link] = seq;
  order_.push_back(link);
  if (order_.size() > kRemembered) {
    seen_.erase(order_.front());
    order_.pop_front();
  }
}

std::vector<Problem> ChainWalker::Feed(const StoredRecord& r) {
  std::vector<Problem> problems;
  const int64_t seq = r.fields.seq;
  const int64_t expected_seq = started_ ? last_seq_ + 1 : first_seq_;
  auto missing_before = [&]() -> std::string {
    return absl::StrCat(Range(expected_seq, seq - 1), " missing (deleted)");
  };
  started_ = true;
  if (r.hash.size() != 32 || r.prev_hash.size() != 32) {
    // Not a link of the chain at all: the gateway links every record it writes.
    if (seq > expected_seq) {
      problems.push_back({Problem::Kind::kMissing, expected_seq, seq - 1, missing_before()});
    }
    problems.push_back({Problem::Kind::kInserted, seq, seq,
                        absl::StrCat("record ", seq, " was inserted: it carries no chain link")});
    last_seq_ = seq;  // its seq is taken; the chain goes on from the record before it
    return problems;
  }
  const bool own_link_holds = Link(r.prev_hash, r.fields) == r.hash;
  if (!own_link_holds) {
    problems.push_back(
        {Problem::Kind::kAltered, seq, seq,
         absl::StrCat("record ", seq, " was altered: its content does not match its link")});
  }
  const std::optional<std::string> expected =
      records_ == 0 ? anchor_ : std::optional<std::string>(last_link_);
  if (expected.has_value() && r.prev_hash != *expected) {
    auto earlier = seen_.find(r.prev_hash);
    if (records_ > 0 && earlier != seen_.end() && earlier->second < last_seq_) {
      // It continues from an earlier record: the ones between were slipped in.
      const int64_t first = earlier->second + 1;
      problems.push_back(
          {Problem::Kind::kInserted, first, last_seq_,
           absl::StrCat(first == last_seq_
                            ? absl::StrCat("record ", first, " was")
                            : absl::StrCat("records ", first, " to ", last_seq_, " were"),
                        " inserted: record ", seq, " continues from record ", earlier->second)});
    } else if (seq > expected_seq) {
      problems.push_back({Problem::Kind::kMissing, expected_seq, seq - 1,
                          absl::StrCat(missing_before(), ": record ", seq,
                                       " does not continue from record ", expected_seq - 1)});
    } else if (own_link_holds) {
      problems.push_back(
          records_ > 0
              ? Problem{Problem::Kind::kAltered, last_seq_, last_seq_,
                        absl::StrCat("record ", last_seq_,
                                     " was altered and its link recomputed (or records up to it "
                                     "were): record ",
                                     seq, " continues from another version of it")}
              : Problem{Problem::Kind::kAltered, seq, seq,
                        absl::StrCat("record ", seq, " does not continue from the anchor")});
    }
  } else if (seq > expected_seq) {
    // Removed, then the chain went on from what was left (or --from named a removed record).
    problems.push_back({Problem::Kind::kMissing, expected_seq, seq - 1, missing_before()});
  }
  Remember(r.hash, seq);
  last_link_ = r.hash;
  last_seq_ = seq;
  ++records_;
  return problems;
}

std::string CheckpointStatement(int64_t seq, absl::string_view link, int64_t signed_at_unix,
                                int64_t previous_seq, absl::string_view previous_statement) {
  return absl::StrCat(
      "RDG-AUDIT-CHECKPOINT-V1\nseq=", seq, "\nhash=", storage::HexOf(link), "\nsigned_at=",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(signed_at_unix),
                       absl::UTCTimeZone()),
      "\nprevious=", previous_seq, ":",
      previous_statement.empty() ? "" : StatementDigestHex(previous_statement), "\n");
}

std::string StatementDigestHex(absl::string_view statement) {
  return storage::ToHex(storage::Sha256::Of(statement));
}

bool ParseCheckpointStatement(absl::string_view statement, CheckpointFields* f) {
  std::vector<absl::string_view> lines = absl::StrSplit(statement, '\n');
  if (lines.size() != 6 || lines[0] != "RDG-AUDIT-CHECKPOINT-V1" || !lines[5].empty() ||
      !absl::ConsumePrefix(&lines[1], "seq=") || !absl::ConsumePrefix(&lines[2], "hash=") ||
      !absl::ConsumePrefix(&lines[3], "signed_at=") ||
      !absl::ConsumePrefix(&lines[4], "previous=") || !absl::SimpleAtoi(lines[1], &f->seq) ||
      lines[2].size() != 64) {
    return false;
  }
  std::vector<absl::string_view> previous = absl::StrSplit(lines[4], absl::MaxSplits(':', 1));
  if (previous.size() != 2 || !absl::SimpleAtoi(previous[0], &f->previous_seq) ||
      !(previous[1].empty() || previous[1].size() == 64)) {
    return false;
  }
  f->link_hex = std::string(lines[2]);
  f->signed_at = std::string(lines[3]);
  f->previous_hex = std::string(previous[1]);
  return true;
}

}  // namespace rdg::audit
