// What only a shared index must do: several gateways (each with its own pool, as separate
// processes would have) writing one PostgreSQL database at once. Uploads of one study through
// two gateways make one exam, one object is stored once, one claim wins, and the clinics' report
// feed — read while reports are being signed — never skips a report that commits late.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/postgres/pg_index_store.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/pg_test_database.h"

namespace rdg::storage::contract {
namespace {

class PostgresIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dsn = CreateTestDatabase();
    if (absl::IsNotFound(dsn.status())) GTEST_SKIP() << dsn.status().message();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    for (auto& gateway : gateways_) {
      auto pool = OpenMigrated(*dsn);
      ASSERT_TRUE(pool.ok()) << pool.status();
      gateway = std::make_unique<pg::PostgresIndexStore>(*std::move(pool));
    }
  }
  IndexStore& gateway(int i) { return *gateways_[i % 2]; }

  std::unique_ptr<pg::PostgresIndexStore> gateways_[2];
};

TEST_F(PostgresIndexTest, UploadsOfOneNewStudyThroughTwoGatewaysMakeOneExam) {
  constexpr int kThreads = 8, kEach = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string sop = absl::StrCat("1.9.", t, ".", i);
        auto r = gateway(t).CommitObjects({MakeObject("c1", "1.9", sop, "sha-" + sop)});
        if (!r[0].ok()) ADD_FAILURE() << r[0].status();
      }
    });
  }
  for (auto& t : threads) t.join();
  ExamQuery q;
  q.origin_institution = "c1";
  auto page = gateway(0).ListExams(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->exams.size(), 1u);
  EXPECT_EQ(page->exams[0].instance_count, kThreads * kEach);
  EXPECT_EQ(gateway(1).ListObjects(page->exams[0].exam_id)->size(), size_t{kThreads * kEach});
  // One RECEIVED and one stage clock of each kind: the exam was created once.
  EXPECT_EQ(gateway(1).ListEvents(page->exams[0].exam_id)->size(), 1u);
}

TEST_F(PostgresIndexTest, OneObjectSentThroughBothGatewaysAtOnceIsStoredOnce) {
  std::atomic<int> added{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto r = gateway(t).CommitObjects({MakeObject("c1", "1.8", "1.8.1", "same-bytes")});
      ASSERT_TRUE(r[0].ok()) << r[0].status();
      (r[0]->duplicate ? duplicates : added)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(added, 1);
  EXPECT_EQ(duplicates, 7);
}

TEST_F(PostgresIndexTest, ExactlyOneClaimWinsAcrossGateways) {
  const std::string exam =
      AddRoutedExam(gateway(0), "1.7", "q", kT0 + absl::Hours(1), rdg::v1::ROUTINE);
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto c = gateway(t).ClaimExam(exam, absl::StrCat("reader", t), "county", kT0,
                                    absl::Minutes(15), ClaimAction::kClaim);
      if (c.ok()) {
        ++won;
      } else if (absl::IsFailedPrecondition(c.status())) {
        ++refused;
      } else {
        ADD_FAILURE() << c.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won, 1);
  EXPECT_EQ(refused, 15);
}

TEST_F(PostgresIndexTest, TheReportFeedReadWhileGatewaysSignSkipsNothing) {
  constexpr int kExams = 48;
  std::vector<std::string> exams;
  for (int i = 0; i < kExams; ++i) {
    exams.push_back(AddRoutedExam(gateway(i), absl::StrCat("2.", i), "q", kT0 + absl::Hours(1),
                                  rdg::v1::ROUTINE));
    ASSERT_TRUE(
        gateway(i)
            .ClaimExam(exams.back(), "r", "county", kT0, absl::Hours(1), ClaimAction::kClaim)
            .ok());
  }
  std::atomic<bool> signing{true};
  std::set<std::string> seen;
  int64_t cursor = 0;
  bool ordered = true;
  auto read_feed = [&] {
    auto page = gateway(1).ReportFeed("c1", cursor, 1000);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const ReportRecord& r : *page) {
      ordered = ordered && r.seq > cursor;
      cursor = r.seq;
      EXPECT_TRUE(seen.insert(r.report_id).second) << "delivered twice: " << r.report_id;
    }
  };
  std::thread clinic([&] {
    while (signing) read_feed();
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 6; ++t) {
    readers.emplace_back([&, t] {
      for (int i = t; i < kExams; i += 6) {
        ReportRecord report;
        report.exam_id = exams[i];
        report.status = rdg::v1::FINAL_REPORT;
        report.reader_user = "r";
        report.reader_institution = "county";
        auto added = gateway(t).AddReport(report, kT0 + absl::Minutes(1));
        if (!added.ok()) ADD_FAILURE() << added.status();
      }
    });
  }
  for (auto& t : readers) t.join();
  signing = false;
  clinic.join();
  read_feed();  // everything committed by now
  EXPECT_TRUE(ordered);
  EXPECT_EQ(seen.size(), size_t{kExams});
  // A report that committed after the cursor passed its number would be missing for good.
  auto all = gateway(0).ReportFeed("c1", 0, 1000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), size_t{kExams});
}

TEST_F(PostgresIndexTest, StageCompletionsAreNumberedInCommitOrder) {
  constexpr int kExams = 24;
  std::vector<std::string> exams;
  for (int i = 0; i < kExams; ++i) {
    exams.push_back(AddRoutedExam(gateway(i), absl::StrCat("3.", i), "q", kT0 + absl::Hours(1),
                                  rdg::v1::ROUTINE));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kExams; i += 6) {
        auto c = gateway(t).ClaimExam(exams[i], "r", "county", kT0 + absl::Minutes(2),
                                      absl::Hours(1), ClaimAction::kClaim);
        if (!c.ok()) ADD_FAILURE() << c.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  auto ended = gateway(0).ListStagesEndedAfter(0, 1000);
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_EQ(ended->size(), size_t{kExams});  // the claim stage of each
  for (size_t i = 0; i < ended->size(); ++i) {
    EXPECT_EQ((*ended)[i].end_seq, static_cast<int64_t>(i + 1)) << "numbers without gaps";
  }
}

}  // namespace
}  // namespace rdg::storage::contract
