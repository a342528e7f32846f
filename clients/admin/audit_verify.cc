#include "clients/admin/audit_verify.h"

#include <google/protobuf/util/time_util.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/common/report_crypto.h"
#include "storage/base/audit_chain.h"
#include "storage/base/digest.h"

namespace rdg::clients {
namespace {

audit::StoredRecord StoredOf(const rdg::v1::AuditEntry& e) {
  audit::StoredRecord r;
  r.fields.seq = e.seq();
  r.fields.at_micros = google::protobuf::util::TimeUtil::TimestampToMicroseconds(e.at());
  r.fields.institution = e.institution();
  r.fields.user = e.user();
  r.fields.role = e.role();
  r.fields.action = e.action();
  r.fields.exam_id = e.exam_id();
  r.fields.detail = e.detail();
  r.fields.outcome = e.outcome();
  r.fields.patient_id = e.patient_id();
  r.fields.peer = e.peer();
  r.fields.subject = e.subject();
  r.prev_hash = e.prev_hash();
  r.hash = e.hash();
  return r;
}

//! Empty when the checkpoint holds; otherwise what is wrong with it. `link`: the hash the
//! record it names carries (checked by the walker); `previous`: the checkpoint verified before
//! it, which it must name (none: the first one seen, taken as it is when verifying from the
//! middle, else it must name none).
std::string CheckCheckpoint(const rdg::v1::AuditCheckpoint& c, const std::string& link,
                            const std::string& ca_path,
                            const std::optional<rdg::v1::AuditCheckpoint>& previous,
                            bool from_start) {
  audit::CheckpointFields f;
  if (!audit::ParseCheckpointStatement(c.statement(), &f) || f.seq != c.seq()) {
    return absl::StrCat("checkpoint at record ", c.seq(), " is not a checkpoint statement for it");
  }
  absl::Time at;
  std::string ignored;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", f.signed_at, &at, &ignored)) {
    return absl::StrCat("checkpoint at record ", c.seq(), " has no valid signing time");
  }
  std::string why;
  if (!VerifyGatewaySignature(c.statement(), c.signature(), ca_path, at, "audit checkpoint",
                              &why)) {
    return absl::StrCat("checkpoint at record ", c.seq(), " is not signed by the gateway: ", why);
  }
  if (previous.has_value()) {
    if (f.previous_seq != previous->seq() ||
        f.previous_hex != audit::StatementDigestHex(previous->statement())) {
      return absl::StrCat("checkpoint at record ", c.seq(), " does not follow the checkpoint at ",
                          previous->seq(), ": the checkpoint(s) between were removed");
    }
  } else if (from_start && f.previous_seq != 0) {
    return absl::StrCat("the checkpoint(s) before the one at record ", c.seq(),
                        " were removed (it follows one at record ", f.previous_seq, ")");
  }
  if (f.link_hex != storage::HexOf(link)) {
    return absl::StrCat("record ", c.seq(), " differs from what the gateway signed at ",
                        f.signed_at, ": the chain up to it was rewritten");
  }
  return "";
}

}  // namespace

absl::StatusOr<AuditVerification> VerifyAuditChain(const FetchAuditPage& fetch, int64_t from_seq,
                                                   const std::string& ca_path) {
  AuditVerification v;
  const bool from_start = from_seq <= 1;
  audit::ChainWalker walker(
      from_start ? std::optional<std::string>(audit::GenesisLink()) : std::nullopt,
      std::max<int64_t>(from_seq, 1));
  std::optional<rdg::v1::AuditCheckpoint> previous;  // the last checkpoint verified
  for (int64_t next = std::max<int64_t>(from_seq, 1); next != 0;) {
    absl::StatusOr<rdg::v1::ExportAuditResponse> page = fetch(next);
    if (!page.ok()) return page.status();
    std::map<int64_t, std::string> links;  // seq → the link the record carries
    for (const auto& e : page->entries()) {
      for (audit::Problem& p : walker.Feed(StoredOf(e))) v.problems.push_back(p.message);
      links[e.seq()] = e.hash();
      if (v.records++ == 0) v.first_seq = e.seq();
      v.last_seq = e.seq();
    }
    for (const auto& c : page->checkpoints()) {
      auto link = links.find(c.seq());
      if (link == links.end()) {
        v.problems.push_back(absl::StrCat(
            "checkpoint at record ", c.seq(), " names a record that is missing",
            c.seq() > v.last_seq ? absl::StrCat(": records after ", v.last_seq, " were deleted")
                                 : ""));
        continue;
      }
      std::string problem = CheckCheckpoint(c, link->second, ca_path, previous, from_start);
      previous = c;  // the next one must follow this one, whatever was wrong with it
      if (!problem.empty()) {
        v.problems.push_back(std::move(problem));
        continue;
      }
      ++v.checkpoints;
      v.last_checkpoint_seq = c.seq();
      v.last_checkpoint_time =
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                           absl::FromUnixSeconds(
                               google::protobuf::util::TimeUtil::TimestampToSeconds(c.signed_at())),
                           absl::UTCTimeZone());
    }
    next = page->next_seq();
  }
  return v;
}

}  // namespace rdg::clients
