// What only a shared index must do: several gateways (each with its own pool, as separate
// processes would have) writing one PostgreSQL database at once. Uploads of one study through
// two gateways make one exam, one object is stored once, one claim wins, and the clinics' report
// feed — read while reports are being signed — never skips a report that commits late.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/postgres/pg_leadership.h"
#include "storage/postgres/pg_listener.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/pg_test_database.h"

namespace rdg::storage::contract {
namespace {

//! Polls `done` every 10 ms until it holds or `limit` passes; whether it held.
template <typename Done>
bool Eventually(Done done, absl::Duration limit = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class PostgresIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dsn = CreateTestDatabase();
    if (absl::IsNotFound(dsn.status())) GTEST_SKIP() << dsn.status().message();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    for (auto& gateway : gateways_) {
      auto pool = OpenMigrated(*dsn);
      ASSERT_TRUE(pool.ok()) << pool.status();
      gateway = std::make_unique<pg::PostgresIndexStore>(*std::move(pool));
    }
  }
  IndexStore& gateway(int i) { return *gateways_[i % 2]; }

  std::string dsn_;
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
      AddRoutedExam(gateway(0), "1.7", "q", kT0 + absl::Hours(1), Priority::kRoutine);
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
                                  Priority::kRoutine));
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
        report.status = ReportStatus::kFinal;
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

TEST_F(PostgresIndexTest, TheStageFeedReadWhileGatewaysClaimSkipsNothing) {
  constexpr int kExams = 48;
  std::vector<std::string> exams;
  for (int i = 0; i < kExams; ++i) {
    exams.push_back(AddRoutedExam(gateway(i), absl::StrCat("3.", i), "q", kT0 + absl::Hours(1),
                                  Priority::kRoutine));
  }
  std::atomic<bool> claiming{true};
  std::set<std::string> seen;  // exams whose claim stage the feed gave
  int64_t cursor = 0;
  bool ordered = true;
  auto read_feed = [&](int g) {
    auto page = gateway(g).ListStagesEndedAfter(cursor, 1000);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const StageRecord& s : *page) {
      ordered = ordered && s.end_seq > cursor;
      cursor = s.end_seq;
      EXPECT_TRUE(seen.insert(s.exam_id).second) << "given twice: " << s.exam_id;
    }
  };
  std::thread dashboard([&] {  // both gateways' metrics read the feed, each numbering as it reads
    for (int g = 0; claiming; ++g) read_feed(g);
  });
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
  claiming = false;
  dashboard.join();
  read_feed(0);  // everything committed by now
  EXPECT_TRUE(ordered);
  EXPECT_EQ(seen.size(), size_t{kExams}) << "a completion committed late was skipped";
  EXPECT_EQ(cursor, kExams) << "numbers without gaps";
}

TEST_F(PostgresIndexTest, OneGatewayLeadsAndAnotherTakesOverWhenItsSessionEnds) {
  auto first = std::make_unique<pg::AdvisoryLeadership>(dsn_);
  pg::AdvisoryLeadership second(dsn_);
  EXPECT_TRUE(first->Leads());
  EXPECT_FALSE(second.Leads());
  EXPECT_TRUE(first->Leads()) << "the leader stays the leader";
  first.reset();  // the leader stops (or dies): its connection, and the lock, end with it
  EXPECT_TRUE(Eventually([&] { return second.Leads(); }));

  // A leader whose session the server ends (a lost network, an administrator) stops leading.
  pg::AdvisoryLeadership third(dsn_);
  EXPECT_FALSE(third.Leads());
  auto admin = pg::Connection::Open(dsn_);
  ASSERT_TRUE(admin.ok()) << admin.status();
  ASSERT_TRUE((*admin)
                  ->Run("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                        "'advisory' AND granted AND pid <> pg_backend_pid() AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())")
                  .ok());
  EXPECT_TRUE(Eventually([&] { return third.Leads(); }));
  EXPECT_FALSE(second.Leads()) << "it noticed, and does not lead again while the third does";
}

TEST_F(PostgresIndexTest, EveryGatewayHearsOfAReportSignedThroughAnother) {
  absl::Mutex mu;
  std::vector<std::string> heard;
  pg::Listener listener(dsn_, RDG_REPORTS_CHANNEL, [&](const std::string& payload) {
    absl::MutexLock lock(&mu);
    heard.push_back(payload);
  });
  auto heard_any = [&](const std::string& payload) {
    absl::MutexLock lock(&mu);
    return std::find(heard.begin(), heard.end(), payload) != heard.end();
  };
  ASSERT_TRUE(Eventually([&] { return heard_any(""); })) << "listening";
  const std::string exam =
      AddRoutedExam(gateway(0), "4.1", "q", kT0 + absl::Hours(1), Priority::kRoutine);
  ASSERT_TRUE(
      gateway(0).ClaimExam(exam, "r", "county", kT0, absl::Hours(1), ClaimAction::kClaim).ok());
  ReportRecord report;
  report.exam_id = exam;
  report.status = ReportStatus::kPreliminary;  // not announced: clinics are not given it
  report.reader_user = "r";
  report.reader_institution = "county";
  ASSERT_TRUE(gateway(1).AddReport(report, kT0).ok());
  report.status = ReportStatus::kFinal;
  ASSERT_TRUE(gateway(1).AddReport(report, kT0 + absl::Minutes(1)).ok());
  EXPECT_TRUE(Eventually([&] { return heard_any("c1"); }));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(std::count(heard.begin(), heard.end(), "c1"), 1) << "the final only, once";
}

TEST_F(PostgresIndexTest, DeliveriesAndAcknowledgementsOfTheSameReportsRaceWithoutLoss) {
  // A delivery batch of one gateway and a clinic's acknowledgements through the other touch the
  // same exams and reports at once. Both lock exams before reports; in another order they
  // deadlock. These pools do not retry, so a deadlock would fail a call here.
  std::unique_ptr<pg::PostgresIndexStore> once[2];
  for (auto& store : once) {
    auto pool = pg::Pool::Open({.conninfo = dsn_, .size = 4, .serialization_retries = 0});
    ASSERT_TRUE(pool.ok()) << pool.status();
    store = std::make_unique<pg::PostgresIndexStore>(*std::move(pool));
  }
  constexpr int kExams = 120;
  std::vector<std::string> exams, reports;
  for (int i = 0; i < kExams; ++i) {
    exams.push_back(AddRoutedExam(gateway(i), absl::StrCat("3.", i), "q", kT0 + absl::Hours(1),
                                  Priority::kRoutine));
    ASSERT_TRUE(
        gateway(i)
            .ClaimExam(exams.back(), "r", "county", kT0, absl::Hours(1), ClaimAction::kClaim)
            .ok());
    ReportRecord report;
    report.exam_id = exams.back();
    report.status = ReportStatus::kFinal;
    report.reader_user = "r";
    report.reader_institution = "county";
    auto added = gateway(i).AddReport(report, kT0 + absl::Minutes(1));
    ASSERT_TRUE(added.ok()) << added.status();
    reports.push_back(added->report_id);
  }
  std::thread deliverer([&] {
    for (size_t i = 0; i < reports.size(); i += 4) {
      std::vector<std::string> batch(reports.begin() + i,
                                     reports.begin() + std::min(reports.size(), i + 4));
      std::reverse(batch.begin(), batch.end());
      if (absl::Status s = once[0]->MarkDelivered(batch, kT0 + absl::Minutes(2)); !s.ok()) {
        ADD_FAILURE() << s;
      }
    }
  });
  // Two nurses of the clinic, one from each end (acknowledging twice changes nothing).
  auto acknowledge = [&](const std::string& id) {
    auto acked = once[1]->AcknowledgeReport(id, "c1", "nurse", kT0 + absl::Minutes(2));
    if (!acked.ok()) ADD_FAILURE() << acked.status();
  };
  std::thread forward([&] { std::for_each(reports.begin(), reports.end(), acknowledge); });
  std::thread backward([&] { std::for_each(reports.rbegin(), reports.rend(), acknowledge); });
  deliverer.join();
  forward.join();
  backward.join();
  for (const std::string& exam : exams) {
    auto events = gateway(0).ListEvents(exam);
    ASSERT_TRUE(events.ok()) << events.status();
    EXPECT_EQ(
        std::count_if(events->begin(), events->end(),
                      [](const ExamEventRecord& e) { return e.state == ExamState::kDelivered; }),
        1)
        << "delivered once: " << exam;
  }
  auto feed = gateway(1).ReportFeed("c1", 0, 1000);
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ(feed->size(), size_t{kExams});
  for (const ReportRecord& r : *feed) {
    EXPECT_TRUE(r.acknowledged_at.has_value()) << r.report_id;
    EXPECT_TRUE(r.delivered_at.has_value()) << r.report_id;
  }
}

TEST_F(PostgresIndexTest, TextWithANulCharacterIsRefusedNotCutShort) {
  // libpq sends text parameters as C strings: a NUL would silently end the value there.
  // Only that object is refused: another clinic's in the same batch commits.
  NewObject n = MakeObject("c1", "4.1", "4.1.1", "sha-nul");
  n.exam.patient.name = std::string("WANG^Li\0DROP", 13);
  const NewObject other = MakeObject("c2", "4.2", "4.2.1", "sha-fine");
  auto r = gateway(0).CommitObjects({n, other});
  ASSERT_EQ(r.size(), 2u);
  ASSERT_FALSE(r[0].ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r[0].status())) << r[0].status();
  EXPECT_TRUE(r[1].ok()) << r[1].status();
  ExamQuery q;
  q.origin_institution = "c1";
  EXPECT_TRUE(gateway(1).ListExams(q)->exams.empty());
  q.origin_institution = "c2";
  EXPECT_EQ(gateway(1).ListExams(q)->exams.size(), 1u);
}

TEST_F(PostgresIndexTest, AnIndexOfANewerReleaseIsRefusedAtOpen) {
  auto conn = pg::Connection::Open(dsn_);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE((*conn)
                  ->Run("INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (9999, 'from_a_later_release', 0)")
                  .ok());
  auto newer = pg::PostgresIndexStore::Open({.conninfo = dsn_, .size = 2});
  ASSERT_FALSE(newer.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(newer.status())) << newer.status();
}

}  // namespace
}  // namespace rdg::storage::contract
