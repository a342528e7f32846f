#include "gateway/worklist/reading_desk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/sqlite_index_store.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::worklist {
namespace {

using ::testing::HasSubstr;

const auth::Principal kReaderA{"county-a", rdg::v1::READER, "reader-a-rad"};
const auth::Principal kReaderA2{"county-a", rdg::v1::READER, "reader-a-lab"};
const auth::Principal kReaderB{"county-b", rdg::v1::READER, "reader-b-rad"};
const auth::Principal kClinic{"clinic-a1", rdg::v1::CLINIC, "clinic-a1"};

//! A desk over a real SQLite index, with time moved by hand.
class ReadingDeskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [name, inst] : {std::pair{"county-a/imaging", "county-a"},
                              std::pair{"county-b/imaging", "county-b"}}) {
      auto* q = config_.add_queues();
      q->set_name(name);
      q->set_institution(inst);
    }
    config_.mutable_claims()->set_lease_seconds(600);
    index_ = *storage::SqliteIndexStore::Open(dir_.Join("index.sqlite"));
    desk_ = std::make_unique<ReadingDesk>(config_, *index_, clock_);
    exam_ = AddExam("1.1", "county-a/imaging");
  }
  std::string AddExam(const std::string& study, const std::string& queue) {
    storage::NewObject n;
    n.exam.origin_institution = n.object.origin_institution = "clinic-a1";
    n.exam.study_instance_uid = study;
    n.object.sop_instance_uid = study + ".1";
    n.object.sha256_hex = "sha" + study;
    n.object.received_at = clock_.Now();
    n.routing = {queue, rdg::v1::STAT, clock_.Now() + absl::Minutes(30), "rule"};
    return index_->CommitObjects({n})[0]->exam_id;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  rdg::v1::GatewayConfig config_;
  std::unique_ptr<storage::SqliteIndexStore> index_;
  std::unique_ptr<ReadingDesk> desk_;
  std::string exam_;
};

TEST_F(ReadingDeskTest, LeaseExpiresWithTheInjectedClock) {
  auto claim = desk_->Claim(kReaderA, exam_);
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(claim->expires_at, clock_.Now() + absl::Minutes(10));
  clock_.Advance(absl::Minutes(9));
  EXPECT_EQ(*desk_->ExpireLeases(), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->Claim(kReaderA2, exam_).status()));
  // Renewal pushes the expiry out from "now".
  ASSERT_TRUE(desk_->Renew(kReaderA, exam_).ok());
  clock_.Advance(absl::Minutes(9));
  EXPECT_EQ(*desk_->ExpireLeases(), 0);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(*desk_->ExpireLeases(), 1);
  EXPECT_EQ((*index_->GetExam(exam_))->state, rdg::v1::ROUTED);
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->Renew(kReaderA, exam_).status()));
  EXPECT_TRUE(desk_->Claim(kReaderA2, exam_).ok());
}

TEST_F(ReadingDeskTest, OnlyTheHolderFetches) {
  auto before = desk_->OpenForFetch(kReaderA, exam_);
  EXPECT_TRUE(absl::IsFailedPrecondition(before.status()));
  EXPECT_THAT(before.status().message(), HasSubstr("claim exam"));
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->OpenForFetch(kReaderA2, exam_).status()));
  auto objects = desk_->OpenForFetch(kReaderA, exam_);
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->size(), 1u);
  clock_.Advance(absl::Minutes(11));  // an expired lease no longer grants access
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->OpenForFetch(kReaderA, exam_).status()));
}

TEST_F(ReadingDeskTest, OtherCountiesAndOtherRolesSeeNothing) {
  EXPECT_TRUE(absl::IsNotFound(desk_->Claim(kReaderB, exam_).status()));
  EXPECT_TRUE(absl::IsNotFound(desk_->OpenForFetch(kReaderB, exam_).status()));
  EXPECT_TRUE(absl::IsNotFound(desk_->Release(kReaderB, exam_)));
  EXPECT_TRUE(desk_->Worklist(kReaderB, {})->entries.empty());
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Worklist(kClinic, {}).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Claim(kClinic, exam_).status()));
  EXPECT_TRUE(absl::IsNotFound(desk_->Claim(kReaderA, "ex-missing").status()));
  auto mine = desk_->Worklist(kReaderA, {});
  ASSERT_EQ(mine->entries.size(), 1u);
  EXPECT_EQ(mine->entries[0].exam.exam_id, exam_);
}

TEST_F(ReadingDeskTest, AccessesAreAudited) {
  ASSERT_TRUE(desk_->Worklist(kReaderA, {}).ok());
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  ASSERT_TRUE(desk_->OpenForFetch(kReaderA, exam_).ok());
  storage::AuditQuery q;
  q.user = "reader-a-rad";
  std::vector<std::string> actions;
  auto audit = index_->ListAudit(q);
  ASSERT_TRUE(audit.ok());
  for (const auto& a : *audit) actions.push_back(a.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"fetch_exam", "claim_exam", "worklist"}));
}

}  // namespace
}  // namespace rdg::worklist
