// SLA stage clocks end to end over a real SQLite index with an injected clock: known stage
// durations give exactly the expected percentiles and within-target shares; breaches are
// detected once, recorded with their overrun, closed when the stage completes, and an unclaimed
// STAT exam is escalated.
#include "gateway/monitoring/turnaround.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "gateway/worklist/index_reading_desk.h"
#include "storage/sqlite_index_store.h"
#include "storage/vocabulary_proto.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/temp_dir.h"
#include "tests/mocks/test_index.h"

namespace rdg::monitoring {
namespace {

using storage::StageRecord;
using ::testing::ElementsAre;
using ::testing::Pair;

TEST(PercentileTest, NearestRank) {
  std::vector<absl::Duration> d;
  for (int i = 1; i <= 10; ++i) d.push_back(absl::Seconds(i));
  EXPECT_EQ(Percentile(d, 50), absl::Seconds(5));
  EXPECT_EQ(Percentile(d, 90), absl::Seconds(9));
  EXPECT_EQ(Percentile(d, 99), absl::Seconds(10));
  EXPECT_EQ(Percentile({absl::Seconds(7)}, 50), absl::Seconds(7));
  EXPECT_EQ(Percentile({}, 50), absl::ZeroDuration());
}

class TurnaroundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [id, community, parent] :
         {std::tuple{"clinic-a1", "county-a", "county-a"},
          std::tuple{"clinic-b1", "county-b", "county-b"},
          std::tuple{"county-a", "county-a", "city"}, std::tuple{"county-b", "county-b", "city"},
          std::tuple{"city", "", ""}}) {
      auto* i = config_.add_institutions();
      i->set_id(id);
      i->set_community(community);
      i->set_parent(parent);
    }
    for (auto [name, inst] :
         {std::pair{"county-a/imaging", "county-a"}, std::pair{"city/radiology-consult", "city"}}) {
      auto* q = config_.add_queues();
      q->set_name(name);
      q->set_institution(inst);
      q->add_exam_types("CT");
      q->add_exam_types("DX");
    }
    auto* stat = config_.add_sla_policies();
    stat->set_exam_type("*");
    stat->set_priority(rdg::v1::STAT);
    stat->set_received_to_claimed_minutes(10);
    stat->set_received_to_final_minutes(30);
    sla_ = std::make_unique<routing::SlaTable>(config_);
    directory_ = std::make_unique<config::InstitutionDirectory>(config_);
    index_ = testing::OpenTestIndex(dir_);
    ASSERT_NE(index_, nullptr);
    desk_ = std::make_unique<worklist::IndexReadingDesk>(
        config_, testing::ReadingDeskStores(*index_), *sla_, clock_);
  }

  //! A new exam received now; targets relative to now.
  std::string Receive(const std::string& study, const std::string& origin, const std::string& type,
                      rdg::v1::Priority priority, absl::Duration claim_target,
                      absl::Duration final_target) {
    storage::NewObject n;
    n.exam.exam_type = type;
    n.exam.origin_institution = n.object.origin_institution = origin;
    n.exam.study_instance_uid = study;
    n.object.sop_instance_uid = study + ".1";
    n.object.sha256_hex = "sha" + study;
    n.object.received_at = clock_.Now();
    n.routing = {"county-a/imaging", storage::FromProto(priority), clock_.Now() + final_target,
                 clock_.Now() + claim_target, "rule"};
    auto outcome = index_->CommitObjects({n})[0];
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome->exam_id;
  }
  void Claim(const std::string& exam) {
    ASSERT_TRUE(index_
                    ->ClaimExam(exam, "reader-a", "county-a", clock_.Now(), absl::Hours(10),
                                storage::ClaimAction::kClaim)
                    .ok());
  }
  std::string Final(const std::string& exam, absl::Duration ack_target) {
    storage::ReportRecord r;
    r.exam_id = exam;
    r.status = storage::ReportStatus::kFinal;
    r.reader_user = "reader-a";
    r.reader_institution = "county-a";
    r.acknowledge_due = clock_.Now() + ack_target;
    auto stored = index_->AddReport(r, clock_.Now());
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored->report_id;
  }
  void Acknowledge(const std::string& report, const std::string& clinic) {
    ASSERT_TRUE(index_->AcknowledgeReport(report, clinic, "clerk", clock_.Now()).ok());
  }

  testing::TempDir dir_;
  FakeClock clock_;
  rdg::v1::GatewayConfig config_;
  std::unique_ptr<routing::SlaTable> sla_;
  std::unique_ptr<config::InstitutionDirectory> directory_;
  std::unique_ptr<storage::IndexStore> index_;
  std::unique_ptr<worklist::IndexReadingDesk> desk_;
};

TEST_F(TurnaroundTest, KnownStageDurationsGiveExactPercentilesAndShares) {
  const absl::Time start = clock_.Now();
  // Exam i (1..100): claimed after i min, final i min later (2i from receipt), acknowledged
  // i min after that. Targets: claim 30 min, final 120 min, acknowledgement 45 min.
  for (int i = 1; i <= 100; ++i) {
    const std::string exam =
        Receive(absl::StrCat("1.", i), i % 2 ? "clinic-a1" : "clinic-b1", i % 2 ? "CT" : "DX",
                rdg::v1::ROUTINE, absl::Minutes(30), absl::Minutes(120));
    clock_.Advance(absl::Minutes(i));
    Claim(exam);
    clock_.Advance(absl::Minutes(i));
    const std::string report = Final(exam, absl::Minutes(45));
    clock_.Advance(absl::Minutes(i));
    Acknowledge(report, i % 2 ? "clinic-a1" : "clinic-b1");
  }
  auto stages = index_->ListStagesEnded(start, clock_.Now() + absl::Seconds(1));
  ASSERT_TRUE(stages.ok()) << stages.status();
  ASSERT_EQ(stages->size(), 300u);

  auto all = ComputeTurnaround(*stages, rdg::v1::TURNAROUND_GROUPING_UNSPECIFIED, *directory_);
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].stages.size(), 3u);
  const StageFigures& claim = all[0].stages[0];
  EXPECT_EQ(claim.stage, storage::Stage::kReceivedToClaimed);
  EXPECT_EQ(claim.count, 100);
  EXPECT_EQ(claim.p50, absl::Minutes(50));
  EXPECT_EQ(claim.p90, absl::Minutes(90));
  EXPECT_EQ(claim.p99, absl::Minutes(99));
  EXPECT_EQ(claim.max, absl::Minutes(100));
  EXPECT_EQ(claim.sum, absl::Minutes(5050));
  EXPECT_EQ(claim.within_target, 30);
  EXPECT_EQ(claim.with_target, 100);
  const StageFigures& final = all[0].stages[1];
  EXPECT_EQ(final.stage, storage::Stage::kReceivedToFinal);
  EXPECT_EQ(final.p50, absl::Minutes(100));
  EXPECT_EQ(final.p99, absl::Minutes(198));
  EXPECT_DOUBLE_EQ(final.WithinShare(), 0.60);
  const StageFigures& ack = all[0].stages[2];
  EXPECT_EQ(ack.stage, storage::Stage::kFinalToAcknowledged);
  EXPECT_EQ(ack.p90, absl::Minutes(90));
  EXPECT_DOUBLE_EQ(ack.WithinShare(), 0.45);

  // By exam type: CT are the odd i (1, 3, …, 99): median of 50 values is the 25th, 49 min.
  auto by_type = ComputeTurnaround(*stages, rdg::v1::BY_EXAM_TYPE, *directory_);
  ASSERT_EQ(by_type.size(), 2u);
  EXPECT_EQ(by_type[0].key, "CT");
  EXPECT_EQ(by_type[0].stages[0].count, 50);
  EXPECT_EQ(by_type[0].stages[0].p50, absl::Minutes(49));
  EXPECT_EQ(by_type[1].key, "DX");
  EXPECT_EQ(by_type[1].stages[0].p50, absl::Minutes(50));
  auto by_county = ComputeTurnaround(*stages, rdg::v1::BY_COUNTY, *directory_);
  ASSERT_EQ(by_county.size(), 2u);
  EXPECT_EQ(by_county[0].key, "county-a");
  EXPECT_EQ(by_county[1].key, "county-b");
  auto by_reviewer = ComputeTurnaround(*stages, rdg::v1::BY_REVIEWING_INSTITUTION, *directory_);
  ASSERT_EQ(by_reviewer.size(), 1u);
  EXPECT_EQ(by_reviewer[0].key, "county-a");

  // A window reads only what completed inside it: the last exam's three stages.
  auto last =
      index_->ListStagesEnded(clock_.Now() - absl::Minutes(200), clock_.Now() + absl::Seconds(1));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->size(), 3u);

  // Late completions were recorded as breaches when they completed: 70 claims, 40 finals, 55
  // acknowledgements, none open.
  auto breaches = index_->ListBreaches({});
  ASSERT_TRUE(breaches.ok());
  std::map<storage::Stage, int> by_stage;
  for (const auto& b : *breaches) {
    ++by_stage[b.stage];
    EXPECT_TRUE(b.ended_at);
    EXPECT_EQ(*b.breached_at, *b.ended_at);
  }
  EXPECT_THAT(by_stage, ElementsAre(Pair(storage::Stage::kReceivedToClaimed, 70),
                                    Pair(storage::Stage::kReceivedToFinal, 40),
                                    Pair(storage::Stage::kFinalToAcknowledged, 55)));
  EXPECT_TRUE(index_->CountOpenBreaches()->empty());
  // The feed hands out every completion once, in order.
  auto feed = index_->ListStagesEndedAfter(0, 1000);
  ASSERT_TRUE(feed.ok());
  ASSERT_EQ(feed->size(), 300u);
  for (size_t i = 1; i < feed->size(); ++i) EXPECT_GT((*feed)[i].end_seq, (*feed)[i - 1].end_seq);
  EXPECT_TRUE(index_->ListStagesEndedAfter(feed->back().end_seq, 1000)->empty());
}

TEST_F(TurnaroundTest, UnclaimedStatExamIsReportedAsBreachedAndEscalated) {
  const std::string exam =
      Receive("2.1", "clinic-a1", "CT", rdg::v1::STAT,
              sla_->ClaimDue("CT", rdg::v1::STAT, clock_.Now()) - clock_.Now(), absl::Minutes(30));
  const absl::Time due = clock_.Now() + absl::Minutes(10);
  clock_.Advance(absl::Minutes(9));
  EXPECT_TRUE(index_->DetectBreaches(clock_.Now(), 100)->empty());
  clock_.Advance(absl::Minutes(2));  // 1 min past the claim target

  auto detected = index_->DetectBreaches(clock_.Now(), 100);
  ASSERT_TRUE(detected.ok()) << detected.status();
  ASSERT_EQ(detected->size(), 1u);
  EXPECT_EQ((*detected)[0].exam_id, exam);
  EXPECT_EQ((*detected)[0].stage, storage::Stage::kReceivedToClaimed);
  EXPECT_EQ((*detected)[0].due_at, due);
  EXPECT_EQ((*detected)[0].Overrun(clock_.Now()), absl::Minutes(1));
  EXPECT_TRUE(index_->DetectBreaches(clock_.Now(), 100)->empty()) << "recorded once";

  // The workflow's automatic escalation moves it up a level.
  auto moved = desk_->EscalateOverdue();
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 1);
  auto events = index_->ListEvents(exam);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().state, storage::ExamState::kEscalated);

  auto open = index_->ListBreaches({.open_only = true});
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].queue, "city/radiology-consult") << "the breach follows the exam";
  EXPECT_FALSE((*open)[0].ended_at);

  // Claimed at the next level 5 min later: the breach closes with a 6 min overrun.
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(index_
                  ->ClaimExam(exam, "reader-city", "city", clock_.Now(), absl::Hours(1),
                              storage::ClaimAction::kClaim)
                  .ok());
  EXPECT_TRUE(index_->ListBreaches({.open_only = true})->empty());
  auto all = index_->ListBreaches({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].Overrun(clock_.Now() + absl::Hours(5)), absl::Minutes(6));
  EXPECT_EQ((*all)[0].reviewing_institution, "city");
  EXPECT_EQ(*(*all)[0].breached_at, due + absl::Minutes(1));

  // The final report is still due 30 min after receipt: sweeping later records that breach too.
  clock_.Advance(absl::Minutes(20));
  auto late = index_->DetectBreaches(clock_.Now(), 100);
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].stage, storage::Stage::kReceivedToFinal);
  auto open_counts = index_->CountOpenBreaches();
  ASSERT_TRUE(open_counts.ok());
  ASSERT_EQ(open_counts->size(), 1u);
  EXPECT_EQ((*open_counts)[0].stage, storage::Stage::kReceivedToFinal);
  EXPECT_EQ((*open_counts)[0].open, 1);
}

TEST_F(TurnaroundTest, CriticalResultsRunTheirOwnAcknowledgementClock) {
  const std::string exam =
      Receive("3.1", "clinic-a1", "CT", rdg::v1::STAT, absl::Minutes(10), absl::Minutes(30));
  Claim(exam);
  storage::ReportRecord r;
  r.exam_id = exam;
  r.status = storage::ReportStatus::kFinal;
  r.critical = true;
  r.reader_user = "reader-a";
  r.reader_institution = "county-a";
  r.acknowledge_by = clock_.Now() + absl::Minutes(15);
  auto stored = index_->AddReport(r, clock_.Now());
  ASSERT_TRUE(stored.ok()) << stored.status();
  clock_.Advance(absl::Minutes(16));
  auto detected = index_->DetectBreaches(clock_.Now(), 100);
  ASSERT_TRUE(detected.ok());
  ASSERT_EQ(detected->size(), 1u);
  EXPECT_EQ((*detected)[0].stage, storage::Stage::kCriticalAcknowledgement);
  Acknowledge(stored->report_id, "clinic-a1");
  auto ended = index_->ListStagesEnded(absl::InfinitePast(), clock_.Now() + absl::Seconds(1));
  ASSERT_TRUE(ended.ok());
  auto figures = ComputeTurnaround(*ended, rdg::v1::BY_PRIORITY, *directory_);
  ASSERT_EQ(figures.size(), 1u);
  EXPECT_EQ(figures[0].key, "STAT");
  ASSERT_EQ(figures[0].stages.size(), 4u);
  EXPECT_EQ(figures[0].stages[3].stage, storage::Stage::kCriticalAcknowledgement);
  EXPECT_EQ(figures[0].stages[3].max, absl::Minutes(16));
  EXPECT_EQ(figures[0].stages[3].within_target, 0);
  EXPECT_EQ(figures[0].stages[2].within_target, 1) << "no routine acknowledgement target";
  EXPECT_EQ(figures[0].stages[2].with_target, 0);
}

}  // namespace
}  // namespace rdg::monitoring
