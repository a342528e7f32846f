// OutboundStore's contract (storage/index/outbound_store.h), typed over SQLite and PostgreSQL:
// report versions become jobs once, in feed order; a job is retried, sent or failed; failed jobs
// go back in the queue on an administrator's word; the summary counts per destination.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/index_store.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/pg_test_database.h"
#include "tests/storage/store_contract.h"

// The backends, outside any namespace so that CTest's names say them plainly: a whole index, as
// the outbound queue's planning reads the report feed.
struct SqliteOutbound {
  static auto Open(rdg::testing::TempDir& dir) {
    return rdg::storage::contract::OpenSqlite<rdg::storage::IndexStore>(dir);
  }
};
struct PostgresOutbound {
  static auto Open(rdg::testing::TempDir&) { return rdg::storage::contract::OpenPostgresIndex(); }
};

namespace rdg::storage::contract {
namespace {

template <typename Backend>
class OutboundStoreContractTest : public StoreContract<IndexStore, Backend> {
 protected:
  //! A reported exam: a PRELIMINARY, a FINAL and an AMENDED version; returns them.
  std::vector<ReportRecord> ReportedExam(const std::string& study) {
    IndexStore& store = *this->store_;
    const std::string exam =
        AddRoutedExam(store, study, "q", kT0 + absl::Hours(1), Priority::kRoutine);
    EXPECT_TRUE(
        store.ClaimExam(exam, "r", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim).ok());
    std::vector<ReportRecord> out;
    for (ReportStatus status :
         {ReportStatus::kPreliminary, ReportStatus::kFinal, ReportStatus::kAmended}) {
      ReportRecord r;
      r.exam_id = exam;
      r.status = status;
      r.reader_user = "r";
      r.reader_institution = "county-a";
      r.content = "findings";
      if (status == ReportStatus::kAmended) r.supersedes = out.back().report_id;
      auto added = store.AddReport(r, kT0 + absl::Minutes(out.size() + 1));
      EXPECT_TRUE(added.ok()) << added.status();
      if (added.ok()) out.push_back(*added);
    }
    return out;
  }
};

using OutboundBackends = ::testing::Types<SqliteOutbound, PostgresOutbound>;
TYPED_TEST_SUITE(OutboundStoreContractTest, OutboundBackends);

OutboundJob OutboundJobOf(const std::string& destination, OutboundKind kind,
                          const ReportRecord& report) {
  OutboundJob j;
  j.destination = destination;
  j.kind = kind;
  j.exam_id = report.exam_id;
  j.report_id = report.report_id;
  return j;
}

TYPED_TEST(OutboundStoreContractTest, FinalAndAmendedVersionsArePlannedOnceInFeedOrder) {
  OutboundStore& store = *this->store_;
  const std::vector<ReportRecord> reports = this->ReportedExam("7.1");
  ASSERT_EQ(reports.size(), 3u);
  auto unplanned = store.UnplannedReports(100);
  ASSERT_TRUE(unplanned.ok()) << unplanned.status();
  ASSERT_EQ(unplanned->size(), 2u) << "a PRELIMINARY version is nobody's result yet";
  EXPECT_EQ((*unplanned)[0].report_id, reports[1].report_id);
  EXPECT_EQ((*unplanned)[1].report_id, reports[2].report_id);
  EXPECT_EQ((*unplanned)[1].content, "findings");

  // One planning step at a time: the cursor moves to the last report planned.
  auto first = store.UnplannedReports(1);
  ASSERT_TRUE(first.ok() && first->size() == 1u);
  const std::vector<OutboundJob> jobs = {
      OutboundJobOf("pacs-a", OutboundKind::kStudyImages, reports[1]),
      OutboundJobOf("pacs-a", OutboundKind::kReportSr, reports[1]),
      OutboundJobOf("his-a", OutboundKind::kReportOru, reports[1])};
  ASSERT_TRUE(store.PlanJobs(jobs, (*first)[0].seq, kT0).ok());
  unplanned = store.UnplannedReports(100);
  ASSERT_TRUE(unplanned.ok() && unplanned->size() == 1u);
  EXPECT_EQ((*unplanned)[0].report_id, reports[2].report_id);
  ASSERT_TRUE(store
                  .PlanJobs({OutboundJobOf("pacs-a", OutboundKind::kReportSr, reports[2])},
                            (*unplanned)[0].seq, kT0)
                  .ok());
  EXPECT_TRUE(store.UnplannedReports(100)->empty());

  // A second planner at a leader handover plans the same again: no second job, and the cursor
  // does not move back.
  ASSERT_TRUE(store.PlanJobs(jobs, (*first)[0].seq, kT0 + absl::Seconds(1)).ok());
  EXPECT_TRUE(store.UnplannedReports(100)->empty());
  auto listed = store.ListJobs(reports[1].exam_id);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 4u);
  for (const OutboundJob& j : *listed) {
    EXPECT_EQ(j.state, OutboundState::kPending);
    EXPECT_EQ(j.attempts, 0);
    EXPECT_EQ(j.created_at, kT0) << "kept as first planned";
    EXPECT_EQ(j.next_attempt_at, kT0);
    EXPECT_FALSE(j.done_at.has_value());
  }
  EXPECT_EQ((*listed)[0].destination, "pacs-a");
  EXPECT_EQ((*listed)[0].kind, OutboundKind::kStudyImages);
  EXPECT_EQ((*listed)[2].kind, OutboundKind::kReportOru);
  EXPECT_EQ((*listed)[3].report_id, reports[2].report_id);
  EXPECT_TRUE(store.ListJobs("ex-none")->empty());
}

TYPED_TEST(OutboundStoreContractTest, AJobIsRetriedThenSentOrFailedAndFailedOnesComeBack) {
  OutboundStore& store = *this->store_;
  const std::vector<ReportRecord> reports = this->ReportedExam("7.2");
  ASSERT_EQ(reports.size(), 3u);
  ASSERT_TRUE(store
                  .PlanJobs({OutboundJobOf("pacs-a", OutboundKind::kReportSr, reports[1]),
                             OutboundJobOf("pacs-a", OutboundKind::kReportPdf, reports[1]),
                             OutboundJobOf("his-a", OutboundKind::kReportOru, reports[1])},
                            reports[1].seq, kT0)
                  .ok());
  auto due = store.DueJobs("pacs-a", kT0, 100);
  ASSERT_TRUE(due.ok()) << due.status();
  ASSERT_EQ(due->size(), 2u) << "each destination its own queue";
  EXPECT_TRUE(store.DueJobs("pacs-a", kT0 - absl::Seconds(1), 100)->empty())
      << "not due before planned";
  const int64_t sr = (*due)[0].job_id, pdf = (*due)[1].job_id;
  auto his = store.DueJobs("his-a", kT0, 100);
  ASSERT_TRUE(his.ok() && his->size() == 1u);
  const int64_t oru = (*his)[0].job_id;
  EXPECT_TRUE(store.DueJobs("pacs-b", kT0, 100)->empty());

  // The PACS is down: retried later.
  ASSERT_TRUE(
      store
          .RecordAttempt(
              sr, {OutboundState::kPending, "connection refused", kT0 + absl::Minutes(1)}, kT0)
          .ok());
  due = store.DueJobs("pacs-a", kT0 + absl::Seconds(30), 100);
  ASSERT_TRUE(due.ok() && due->size() == 1u);
  EXPECT_EQ((*due)[0].job_id, pdf);
  due = store.DueJobs("pacs-a", kT0 + absl::Minutes(1), 100);
  ASSERT_TRUE(due.ok() && due->size() == 2u);
  EXPECT_EQ((*due)[1].job_id, sr) << "by next attempt";
  EXPECT_EQ((*due)[1].attempts, 1);
  EXPECT_EQ((*due)[1].detail, "connection refused");
  EXPECT_EQ(store.DueJobs("pacs-a", kT0 + absl::Minutes(1), 1)->size(), 1u);

  // Sent; then an attempt that ended late (a former leader's) changes nothing.
  ASSERT_TRUE(
      store.RecordAttempt(sr, {OutboundState::kSent, "stored"}, kT0 + absl::Minutes(2)).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store.RecordAttempt(sr, {OutboundState::kPending, "late", kT0}, kT0 + absl::Minutes(3))));
  EXPECT_TRUE(absl::IsNotFound(store.RecordAttempt(999999, {OutboundState::kSent, ""}, kT0)));
  ASSERT_TRUE(
      store.RecordAttempt(oru, {OutboundState::kSent, "ACK AA"}, kT0 + absl::Minutes(2)).ok());
  ASSERT_TRUE(
      store.RecordAttempt(pdf, {OutboundState::kFailed, "refused: 0xA900"}, kT0 + absl::Minutes(2))
          .ok());
  EXPECT_TRUE(store.DueJobs("pacs-a", kT0 + absl::Hours(1), 100)->empty());
  EXPECT_TRUE(store.DueJobs("his-a", kT0 + absl::Hours(1), 100)->empty());
  auto jobs = store.ListJobs(reports[1].exam_id);
  ASSERT_TRUE(jobs.ok() && jobs->size() == 3u);
  EXPECT_EQ((*jobs)[0].state, OutboundState::kSent);
  EXPECT_EQ((*jobs)[0].attempts, 2);
  EXPECT_EQ((*jobs)[0].done_at, kT0 + absl::Minutes(2));
  EXPECT_EQ((*jobs)[0].detail, "stored");
  EXPECT_EQ((*jobs)[1].state, OutboundState::kFailed);
  EXPECT_EQ((*jobs)[2].detail, "ACK AA");

  auto summary = store.SummarizeOutbound();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->size(), 2u);
  EXPECT_EQ((*summary)[0].destination, "his-a");
  EXPECT_EQ((*summary)[0].sent, 1);
  EXPECT_EQ((*summary)[0].last_error, "");
  const OutboundSummary& pacs = (*summary)[1];
  EXPECT_EQ(pacs.destination, "pacs-a");
  EXPECT_EQ(pacs.pending, 0);
  EXPECT_EQ(pacs.sent, 1);
  EXPECT_EQ(pacs.failed, 1);
  EXPECT_FALSE(pacs.oldest_pending_since.has_value());
  EXPECT_EQ(pacs.last_sent_at, kT0 + absl::Minutes(2));
  EXPECT_EQ(pacs.last_error, "refused: 0xA900");

  // An administrator puts the failed job back: due at once, its attempts kept.
  EXPECT_EQ(*store.RetryFailed("his-a", kT0 + absl::Hours(1)), 0);
  EXPECT_EQ(*store.RetryFailed("pacs-a", kT0 + absl::Hours(1)), 1);
  due = store.DueJobs("pacs-a", kT0 + absl::Hours(1), 100);
  ASSERT_TRUE(due.ok() && due->size() == 1u);
  EXPECT_EQ((*due)[0].job_id, pdf);
  EXPECT_EQ((*due)[0].attempts, 1);
  EXPECT_FALSE((*due)[0].done_at.has_value());
  summary = store.SummarizeOutbound();
  ASSERT_TRUE(summary.ok() && summary->size() == 2u);
  EXPECT_EQ((*summary)[1].pending, 1);
  EXPECT_EQ((*summary)[1].oldest_pending_since, kT0);
}

TYPED_TEST(OutboundStoreContractTest, SentJobsArePurgedOldestFirstNeverPendingOrFailedOnes) {
  OutboundStore& store = *this->store_;
  const std::vector<ReportRecord> reports = this->ReportedExam("7.4");
  ASSERT_EQ(reports.size(), 3u);
  ASSERT_TRUE(store
                  .PlanJobs({OutboundJobOf("pacs-a", OutboundKind::kReportSr, reports[1]),
                             OutboundJobOf("pacs-a", OutboundKind::kReportPdf, reports[1]),
                             OutboundJobOf("his-a", OutboundKind::kReportOru, reports[1]),
                             OutboundJobOf("his-b", OutboundKind::kReportOru, reports[1])},
                            reports[1].seq, kT0)
                  .ok());
  auto id_of = [&](const std::string& destination, size_t n) {
    auto due = store.DueJobs(destination, kT0, 100);
    EXPECT_TRUE(due.ok() && due->size() > n);
    return due.ok() && due->size() > n ? (*due)[n].job_id : int64_t{0};
  };
  const int64_t sr = id_of("pacs-a", 0), pdf = id_of("pacs-a", 1), oru_a = id_of("his-a", 0);
  ASSERT_TRUE(
      store.RecordAttempt(sr, {OutboundState::kSent, "stored"}, kT0 + absl::Minutes(2)).ok());
  ASSERT_TRUE(
      store.RecordAttempt(oru_a, {OutboundState::kSent, "ACK AA"}, kT0 + absl::Minutes(10)).ok());
  ASSERT_TRUE(
      store.RecordAttempt(pdf, {OutboundState::kFailed, "refused"}, kT0 + absl::Minutes(1)).ok());
  // his-b's job is still pending.

  // pacs-a's SR sent again later (an addendum's): the earlier one may go, the last may not.
  ASSERT_TRUE(store
                  .PlanJobs({OutboundJobOf("pacs-a", OutboundKind::kReportSr, reports[2])},
                            reports[2].seq, kT0 + absl::Minutes(20))
                  .ok());
  auto due = store.DueJobs("pacs-a", kT0 + absl::Minutes(20), 100);
  ASSERT_TRUE(due.ok() && due->size() == 1u);  // the failed PDF is not due
  const int64_t sr2 = (*due)[0].job_id;
  ASSERT_EQ((*due)[0].report_id, reports[2].report_id);
  ASSERT_TRUE(
      store.RecordAttempt(sr2, {OutboundState::kSent, "stored"}, kT0 + absl::Minutes(30)).ok());

  EXPECT_EQ(*store.PurgeSent(kT0 + absl::Minutes(1), 100), 0) << "nothing sent before then";
  EXPECT_EQ(*store.PurgeSent(kT0 + absl::Hours(1), 1), 1) << "the limit holds";
  auto jobs = store.ListJobs(reports[1].exam_id);  // the exam's: both versions'
  ASSERT_TRUE(jobs.ok() && jobs->size() == 4u);
  for (const OutboundJob& j : *jobs) EXPECT_NE(j.job_id, sr) << "the oldest sent goes first";
  // his-a's only sent job, and pacs-a's last, stay: when each last took a job stays known.
  EXPECT_EQ(*store.PurgeSent(kT0 + absl::Hours(1000), 100), 0);
  auto summary = store.SummarizeOutbound();
  ASSERT_TRUE(summary.ok()) << summary.status();
  for (const OutboundSummary& d : *summary) {
    if (d.destination == "his-a") EXPECT_EQ(d.last_sent_at, kT0 + absl::Minutes(10));
    if (d.destination == "pacs-a") EXPECT_EQ(d.last_sent_at, kT0 + absl::Minutes(30));
  }
  jobs = store.ListJobs(reports[1].exam_id);
  ASSERT_TRUE(jobs.ok() && jobs->size() == 4u);  // the failed PDF, the ORUs, pacs-a's last SR
  EXPECT_EQ((*jobs)[0].job_id, pdf);
  EXPECT_EQ((*jobs)[0].state, OutboundState::kFailed);
  EXPECT_EQ((*jobs)[2].state, OutboundState::kPending);
}

TYPED_TEST(OutboundStoreContractTest, AnAmendmentWaitsForTheVersionItAmendsAtTheSameDestination) {
  OutboundStore& store = *this->store_;
  const std::vector<ReportRecord> reports = this->ReportedExam("7.3");
  ASSERT_EQ(reports.size(), 3u);
  ASSERT_TRUE(store
                  .PlanJobs({OutboundJobOf("his-a", OutboundKind::kReportOru, reports[1]),
                             OutboundJobOf("his-a", OutboundKind::kReportOru, reports[2]),
                             OutboundJobOf("pacs-a", OutboundKind::kReportSr, reports[2])},
                            reports[2].seq, kT0)
                  .ok());
  auto due = store.DueJobs("his-a", kT0, 100);
  ASSERT_TRUE(due.ok() && due->size() == 1u);
  EXPECT_EQ((*due)[0].report_id, reports[1].report_id) << "the FINAL version first";
  const int64_t final_oru = (*due)[0].job_id;
  // The HIS was down: the FINAL's ORU waits a minute; the AMENDED one still waits behind it.
  ASSERT_TRUE(store
                  .RecordAttempt(final_oru,
                                 {OutboundState::kPending, "refused", kT0 + absl::Minutes(1)}, kT0)
                  .ok());
  EXPECT_TRUE(store.DueJobs("his-a", kT0 + absl::Seconds(30), 100)->empty());
  EXPECT_EQ(store.DueJobs("pacs-a", kT0, 100)->size(), 1u) << "other kinds do not wait";
  due = store.DueJobs("his-a", kT0 + absl::Minutes(1), 100);
  ASSERT_TRUE(due.ok() && due->size() == 1u);
  EXPECT_EQ((*due)[0].job_id, final_oru);
  ASSERT_TRUE(
      store.RecordAttempt(final_oru, {OutboundState::kSent, "ACK AA"}, kT0 + absl::Minutes(1))
          .ok());
  due = store.DueJobs("his-a", kT0 + absl::Minutes(1), 100);
  ASSERT_TRUE(due.ok() && due->size() == 1u);
  EXPECT_EQ((*due)[0].report_id, reports[2].report_id) << "then the amendment";
}

}  // namespace
}  // namespace rdg::storage::contract
