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
  ChainWalker from_middle(std::nullopt, 8);
  for (auto r = chain.begin() + 7; r != chain.end(); ++r) EXPECT_TRUE(from_middle.Feed(*r).empty());
}

std::vector<std::string> WalkFrom(const std::vector<StoredRecord>& records, int64_t first_seq) {
  ChainWalker walker(std::nullopt, first_seq);
  std::vector<std::string> said;
  for (const auto& r : records) {
    for (const auto& p : walker.Feed(r)) said.push_back(p.message);
  }
  return said;
}

TEST(AuditChainTest, FromTheMiddleTheRecordAskedForMustBeThere) {
  auto chain = Chain(10);
  EXPECT_TRUE(WalkFrom({chain.begin() + 3, chain.end()}, 4).empty());
  EXPECT_EQ(WalkFrom({chain.begin() + 5, chain.end()}, 4),
            std::vector<std::string>{"records 4 to 5 are missing (deleted)"});
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
            std::vector<std::string>{"record 7 was inserted: record 8 continues from record 6"});

  // Two of them: both named.
  auto two = Chain(6);
  for (int64_t seq : {7, 8}) {
    StoredRecord r;
    r.fields = chain[3].fields;
    r.fields.seq = seq;
    r.prev_hash = two.back().hash;
    r.hash = Link(r.prev_hash, r.fields);
    two.push_back(r);
  }
  StoredRecord gateway = next;
  gateway.fields.seq = 9;
  gateway.hash = Link(gateway.prev_hash, gateway.fields);
  two.push_back(gateway);
  EXPECT_EQ(Walk(two), std::vector<std::string>{
                           "records 7 to 8 were inserted: record 9 continues from record 6"});
}

TEST(AuditChainTest, ARecordWhosePredecessorLinkAloneWasChangedBlamesOnlyItself) {
  auto chain = Chain(6);
  chain[3].prev_hash = std::string(32, 'x');
  EXPECT_EQ(Walk(chain),
            std::vector<std::string>{"record 4 was altered: its content does not match its link"});
}

TEST(AuditChainTest, ARecordWhoseLinkWasRecomputedIsNamedByItsSuccessor) {
  auto chain = Chain(6);
  chain[2].fields.detail = "rewritten";
  chain[2].hash = Link(chain[2].prev_hash, chain[2].fields);
  EXPECT_EQ(Walk(chain), std::vector<std::string>{
                             "record 3 was altered and its link recomputed (or records up to it "
                             "were): record 4 continues from another version of it"});
}

TEST(AuditChainTest, CheckpointStatementsRoundTripAndNameTheirPredecessor) {
  const std::string link(32, '\x5a');
  std::string hex_link;
  for (int i = 0; i < 32; ++i) hex_link += "5a";
  const std::string first = CheckpointStatement(42, link, 1'700'000'000, 0, "");
  EXPECT_EQ(first, "RDG-AUDIT-CHECKPOINT-V1\nseq=42\nhash=" + hex_link +
                       "\nsigned_at=2023-11-14T22:13:20Z\nprevious=0:\n");
  const std::string second = CheckpointStatement(50, link, 1'700'000'300, 42, first);
  CheckpointFields f;
  ASSERT_TRUE(ParseCheckpointStatement(second, &f));
  EXPECT_EQ(f.seq, 50);
  EXPECT_EQ(f.link_hex, storage::HexOf(link));
  EXPECT_EQ(f.signed_at, "2023-11-14T22:18:20Z");
  EXPECT_EQ(f.previous_seq, 42);
  EXPECT_EQ(f.previous_hex, StatementDigestHex(first));
  EXPECT_EQ(f.previous_hex.size(), 64u);
  ASSERT_TRUE(ParseCheckpointStatement(first, &f));
  EXPECT_EQ(f.previous_hex, "");
  EXPECT_FALSE(ParseCheckpointStatement("RDG-RECEIPT-V1\nseq=1\n", &f));
}

}  // namespace
}  // namespace rdg::audit
