// The audit hash chain: links, the canonical encoding, and how the walker names altered,
// missing and inserted records.
#include "storage/base/audit_chain.h"

#include <gtest/gtest.h>

#include "storage/base/digest.h"

namespace rdg::audit {
namespace {

//! A chain of `n` records (seq 1..n) as the store writes it.
std::vector<StoredRecord> Chain(int n) {
  std::vector<StoredRecord> out;
  std::string link = GenesisLink();
  for (int i = 1; i <= n; ++i) {
    StoredRecord r;
    r.fields = {i,          1'700'000'000'000'000 + i,
                "county-a", "reader-a-rad",
                2,          "fetch_exam",
                "ex-1",     "",
                "",         "",
                "",         ""};
    r.prev_hash = link;
    r.hash = Link(link, r.fields);
    link = r.hash;
    out.push_back(r);
  }
  return out;
}

std::vector<std::string> Walk(const std::vector<StoredRecord>& records,
                              std::optional<std::string> anchor = GenesisLink()) {
  ChainWalker walker(std::move(anchor));
  std::vector<std::string> said;
  for (const auto& r : records) {
    for (const auto& p : walker.Feed(r)) said.push_back(p.message);
  }
  return said;
}

TEST(AuditChainTest, CanonicalBytesArePrefixedByLengthSoFieldsCannotBleed) {
  ChainedFields a{1, 2, "ab", "c", 0, "", "", "", "", "", "", ""};
  ChainedFields b{1, 2, "a", "bc", 0, "", "", "", "", "", "", ""};
  EXPECT_EQ(CanonicalBytes(a), "RDG-AUDIT-V11:11:22:ab1:c1:00:0:0:0:0:0:0:");
  EXPECT_NE(Link(GenesisLink(), a), Link(GenesisLink(), b));
  // SHA-256 over the previous link and the encoding, nothing else.
  storage::Sha256 h;
  h.Update(GenesisLink());
  h.Update(CanonicalBytes(a));
  EXPECT_EQ(Link(GenesisLink(), a), storage::ToRaw(h.Finish()));
  // UTF-8 names count in bytes.
  ChainedFields chinese{1, 2, "", "张三", 0, "", "", "", "", "", "", ""};
  EXPECT_NE(CanonicalBytes(chinese).find("6:张三"), std::string::npos);
}

TEST(AuditChainTest, AnIntactChainSaysNothing) {
  EXPECT_TRUE(Walk(Chain(20)).empty());
  auto chain = Chain(20);
  // From the middle, the first record's own predecessor link is taken on trust.
  EXPECT_TRUE(Walk({chain.begin() + 7, chain.end()}, std::nullopt).empty());
}

TEST(AuditChainTest, AnEditedRecordIsNamed) {
  auto chain = Chain(10);
  chain[2].fields.user = "somebody-else";
  EXPECT_EQ(Walk(chain),
            std::vector<std::string>{"record 3 was altered: its content does not match its link"});
}

TEST(AuditChainTest, DeletedRecordsAreNamedAsARange) {
  auto chain = Chain(10);
  chain.erase(chain.begin() + 4, chain.begin() + 7);  // 5, 6, 7
  EXPECT_EQ(Walk(chain),
            std::vector<std::string>{"records 5 to 7 are missing (deleted): record 8 does not "
                                     "continue from record 4"});
  // The first records, and the last ones followed by more (the gateway chains on from memory).
  auto head = Chain(5);
  head.erase(head.begin());
  EXPECT_EQ(Walk(head), std::vector<std::string>{"record 1 is missing (deleted): record 2 does "
                                                 "not continue from record 0"});
}

TEST(AuditChainTest, AnInsertedRecordIsNamedWithOrWithoutALink) {
  auto chain = Chain(6);
  StoredRecord bare;
  bare.fields = chain[3].fields;
  bare.fields.seq = 7;
  chain.push_back(bare);  // no links at all
  StoredRecord next;      // the gateway's next record continues from record 6
  next.fields = chain[3].fields;
  next.fields.seq = 8;
  next.prev_hash = chain[5].hash;
  next.hash = Link(next.prev_hash, next.fields);
  chain.push_back(next);
  EXPECT_EQ(Walk(chain), std::vector<std::string>{"record 7 was inserted: it carries no chain "
                                                  "link"});

  // With a correct link computed by the insider: the gateway's next record skips it.
  auto forged_chain = Chain(6);
  StoredRecord forged;
  forged.fields = chain[3].fields;
  forged.fields.seq = 7;
  forged.fields.user = "insider";
  forged.prev_hash = forged_chain.back().hash;
  forged.hash = Link(forged.prev_hash, forged.fields);
  forged_chain.push_back(forged);
  forged_chain.push_back(next);  // still continues from record 6
  EXPECT_EQ(Walk(forged_chain),
            std::vector<std::string>{
                "record 7 was inserted: record 8 continues from the record before it"});
}

TEST(AuditChainTest, ARecordWhoseLinkWasRecomputedIsNamedByItsSuccessor) {
  auto chain = Chain(6);
  chain[2].fields.detail = "rewritten";
  chain[2].hash = Link(chain[2].prev_hash, chain[2].fields);
  EXPECT_EQ(Walk(chain), std::vector<std::string>{
                             "record 3 was altered and its link recomputed: record 4 continues "
                             "from another version of it"});
}

TEST(AuditChainTest, CheckpointStatementsRoundTrip) {
  const std::string link(32, '\x5a');
  const std::string statement = CheckpointStatement(42, link, 1'700'000'000);
  std::string hex_link;
  for (int i = 0; i < 32; ++i) hex_link += "5a";
  EXPECT_EQ(statement, "RDG-AUDIT-CHECKPOINT-V1\nseq=42\nhash=" + hex_link +
                           "\nsigned_at=2023-11-14T22:13:20Z\n");
  int64_t seq = 0;
  std::string hex, at;
  ASSERT_TRUE(ParseCheckpointStatement(statement, &seq, &hex, &at));
  EXPECT_EQ(seq, 42);
  EXPECT_EQ(hex, storage::HexOf(link));
  EXPECT_EQ(at, "2023-11-14T22:13:20Z");
  EXPECT_FALSE(ParseCheckpointStatement("RDG-RECEIPT-V1\nseq=1\n", &seq, &hex, &at));
}

}  // namespace
}  // namespace rdg::audit
