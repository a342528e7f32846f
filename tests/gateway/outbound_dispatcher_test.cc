// The outbound queue's worker (gateway/outbound/dispatcher.h) on a real index, with a fake sender
// and clock: which jobs a report version makes, retries with backoff, a destination that cannot
// be reached, refusals, leadership; and what an HL7 ACK means (mllp_sender.h).
#include "gateway/outbound/dispatcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gateway/outbound/mllp_sender.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/temp_dir.h"
#include "tests/mocks/test_index.h"
#include "tests/storage/index_contract_support.h"

namespace rdg::outbound {
namespace {

using storage::OutboundJob;
using storage::OutboundKind;
using storage::OutboundState;

//! Answers as told per destination (sent by default) and records what it was asked.
class FakeSender final : public Sender {
 public:
  SendOutcome Send(const Destination& destination, const OutboundJob& job, Payloads&) override {
    calls.push_back(destination.config.name() + "/" + storage::OutboundKindName(job.kind));
    auto it = answers.find(destination.config.name());
    return it == answers.end() ? SendOutcome::Sent("ok") : it->second;
  }
  std::map<std::string, SendOutcome> answers;
  std::vector<std::string> calls;
};

class NoPayloads final : public Payloads {
 public:
  absl::StatusOr<std::vector<DicomObject>> DicomObjectsOf(const OutboundJob&) override {
    return absl::UnimplementedError("not in this test");
  }
  absl::StatusOr<std::string> MessageOf(const OutboundJob&, const Destination&) override {
    return absl::UnimplementedError("not in this test");
  }
};

class Leadership final : public storage::Leadership {
 public:
  bool Leads() override { return leads; }
  bool leads = true;
};

rdg::v1::GatewayConfig Config() {
  rdg::v1::GatewayConfig c;
  auto* clinic = c.add_institutions();
  clinic->set_id("c1");  // the exams' origin (index_contract_support.h)
  auto* pacs = clinic->add_destinations();
  pacs->set_name("c1-pacs");
  pacs->mutable_dicom()->set_address("127.0.0.1:104");
  pacs->mutable_dicom()->set_called_ae("PACS");
  auto* his = clinic->add_destinations();
  his->set_name("c1-his");
  his->mutable_hl7()->set_address("127.0.0.1:2575");
  auto* county = c.add_institutions();
  county->set_id("county-a");  // the readers'
  auto* county_pacs = county->add_destinations();
  county_pacs->set_name("county-pacs");
  county_pacs->mutable_dicom()->set_address("127.0.0.1:105");
  county_pacs->mutable_dicom()->set_called_ae("COUNTY");
  county_pacs->mutable_dicom()->set_reports_only(true);
  auto* other = c.add_institutions();
  other->set_id("c2");
  auto* other_his = other->add_destinations();
  other_his->set_name("c2-his");
  other_his->mutable_hl7()->set_address("127.0.0.1:2576");
  return c;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    index_ = testing::OpenTestIndex(dir_);
    ASSERT_NE(index_, nullptr);
    Dispatcher::Options options;
    options.max_backoff = absl::Seconds(30);
    dispatcher_ = std::make_unique<Dispatcher>(index_->outbound(), leadership_,
                                               Dispatcher::DestinationsOf(Config()), payloads_,
                                               sender_, clock_, options);
  }

  //! A FINAL report, then (when `amend`) an addendum, on a new exam of c1 read at county-a.
  std::string Reported(const std::string& study, bool amend) {
    const std::string exam = storage::contract::AddRoutedExam(
        *index_, study, "q", clock_.Now() + absl::Hours(1), storage::Priority::kRoutine);
    EXPECT_TRUE(index_
                    ->ClaimExam(exam, "r", "county-a", clock_.Now(), absl::Minutes(15),
                                storage::ClaimAction::kClaim)
                    .ok());
    storage::ReportRecord r;
    r.exam_id = exam;
    r.status = storage::ReportStatus::kFinal;
    r.reader_user = "r";
    r.reader_institution = "county-a";
    auto final = index_->AddReport(r, clock_.Now());
    EXPECT_TRUE(final.ok()) << final.status();
    if (amend && final.ok()) {
      r.status = storage::ReportStatus::kAmended;
      r.supersedes = final->report_id;
      EXPECT_TRUE(index_->AddReport(r, clock_.Now()).ok());
    }
    return exam;
  }

  std::vector<OutboundJob> Jobs(const std::string& exam) {
    auto jobs = index_->ListJobs(exam);
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? *jobs : std::vector<OutboundJob>{};
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::IndexStore> index_;
  FakeClock clock_;
  Leadership leadership_;
  NoPayloads payloads_;
  FakeSender sender_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, AVersionGoesToTheDestinationsOfTheOriginAndOfTheReadersOnce) {
  const std::string exam = Reported("8.1", /*amend=*/true);
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  // The FINAL version's jobs go first; the amendment's wait for them (the next round).
  EXPECT_EQ(sender_.calls.size(), 6u);
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  std::multiset<std::string> got(sender_.calls.begin(), sender_.calls.end());
  // The clinic's PACS: the images once (with the FINAL version), SR and PDF per version; the
  // county's PACS takes reports only; each HIS an ORU per version; c2's HIS nothing.
  EXPECT_EQ(got,
            (std::multiset<std::string>{"c1-pacs/images", "c1-pacs/sr", "c1-pacs/sr", "c1-pacs/pdf",
                                        "c1-pacs/pdf", "c1-his/oru", "c1-his/oru", "county-pacs/sr",
                                        "county-pacs/sr", "county-pacs/pdf", "county-pacs/pdf"}));
  for (const OutboundJob& j : Jobs(exam)) {
    EXPECT_EQ(j.state, OutboundState::kSent) << j.destination;
    EXPECT_EQ(j.attempts, 1);
    EXPECT_EQ(j.detail, "ok");
  }
  sender_.calls.clear();
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  EXPECT_TRUE(sender_.calls.empty()) << "sent once";
}

TEST_F(DispatcherTest, AnUnreachableDestinationIsRetriedWithGrowingWaitsAndTheOthersGoOn) {
  sender_.answers["c1-pacs"] = {SendOutcome::Kind::kRetry, "connection refused", true};
  const std::string exam = Reported("8.2", /*amend=*/false);
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  // One attempt at the PACS per round: its other jobs wait for the next.
  EXPECT_EQ(std::count_if(sender_.calls.begin(), sender_.calls.end(),
                          [](const std::string& c) { return c.rfind("c1-pacs/", 0) == 0; }),
            1);
  EXPECT_EQ(std::count(sender_.calls.begin(), sender_.calls.end(), "c1-his/oru"), 1);
  auto pending = [&] {
    std::vector<OutboundJob> out;
    for (const OutboundJob& j : Jobs(exam)) {
      if (j.state == OutboundState::kPending) out.push_back(j);
    }
    return out;
  };
  ASSERT_EQ(pending().size(), 3u);
  const OutboundJob tried = pending()[0];
  EXPECT_EQ(tried.attempts, 1);
  EXPECT_EQ(tried.detail, "connection refused");
  EXPECT_EQ(tried.next_attempt_at, clock_.Now() + absl::Seconds(10));

  // Each round tries the PACS once, with the job due first; a job's waits grow: 10 s, 20 s, then
  // the 30 s cap.
  std::vector<absl::Duration> waits;
  int32_t attempts = tried.attempts;
  for (int round = 0; round < 20 && waits.size() < 3; ++round) {
    sender_.calls.clear();
    clock_.Advance(absl::Seconds(10));
    ASSERT_TRUE(dispatcher_->RunOnce().ok());
    EXPECT_LE(std::count_if(sender_.calls.begin(), sender_.calls.end(),
                            [](const std::string& c) { return c.rfind("c1-pacs/", 0) == 0; }),
              1);
    for (const OutboundJob& j : Jobs(exam)) {
      if (j.job_id != tried.job_id || j.attempts == attempts) continue;
      attempts = j.attempts;
      waits.push_back(j.next_attempt_at - clock_.Now());
    }
  }
  EXPECT_EQ(waits,
            (std::vector<absl::Duration>{absl::Seconds(20), absl::Seconds(30), absl::Seconds(30)}));
  // The PACS is back: everything it is owed goes.
  sender_.answers.erase("c1-pacs");
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  EXPECT_TRUE(pending().empty());
}

TEST_F(DispatcherTest, ARefusalIsForGoodUntilAnAdministratorRetries) {
  sender_.answers["c1-his"] = {SendOutcome::Kind::kRefused, "ACK AR unknown patient", false};
  const std::string exam = Reported("8.3", /*amend=*/false);
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  clock_.Advance(absl::Hours(1));
  sender_.calls.clear();
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  EXPECT_TRUE(sender_.calls.empty());
  bool failed = false;
  for (const OutboundJob& j : Jobs(exam)) {
    if (j.destination != "c1-his") continue;
    failed = true;
    EXPECT_EQ(j.state, OutboundState::kFailed);
    EXPECT_EQ(j.detail, "ACK AR unknown patient");
  }
  EXPECT_TRUE(failed);
  sender_.answers.erase("c1-his");
  ASSERT_EQ(*index_->RetryFailed("c1-his", clock_.Now()), 1);
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  EXPECT_EQ(sender_.calls, std::vector<std::string>{"c1-his/oru"});
}

TEST_F(DispatcherTest, OnlyTheLeaderPlansAndSends) {
  leadership_.leads = false;
  const std::string exam = Reported("8.4", /*amend=*/false);
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  EXPECT_TRUE(sender_.calls.empty());
  EXPECT_TRUE(Jobs(exam).empty());
  leadership_.leads = true;
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  EXPECT_EQ(sender_.calls.size(), 6u);
}

TEST_F(DispatcherTest, AJobOfADestinationNoLongerConfiguredFails) {
  const std::string exam = Reported("8.5", /*amend=*/false);
  // Planned by a gateway whose configuration had "old-his".
  ASSERT_TRUE(
      index_->PlanJobs({{0, "old-his", OutboundKind::kReportOru, exam, "rp-x"}}, 0, clock_.Now())
          .ok());
  ASSERT_TRUE(dispatcher_->RunOnce().ok());
  for (const OutboundJob& j : Jobs(exam)) {
    if (j.destination != "old-his") continue;
    EXPECT_EQ(j.state, OutboundState::kFailed);
    EXPECT_EQ(j.detail, "the destination is no longer configured");
  }
}

TEST(ReadAckTest, TheAckCodeDecides) {
  auto ack = [](const std::string& code, const std::string& id) {
    return "MSH|^~\\&|HIS|H|RDG|county-a|20261202||ACK^R01^ACK|A1|P|2.5.1\rMSA|" + code + "|" + id +
           "|text\r";
  };
  SendOutcome o = ReadAck(ack("AA", "RDG7"), "RDG7");
  EXPECT_EQ(o.kind, SendOutcome::Kind::kSent);
  EXPECT_EQ(o.detail, "ACK AA text");
  EXPECT_EQ(ReadAck(ack("CA", "RDG7"), "RDG7").kind, SendOutcome::Kind::kSent);
  EXPECT_EQ(ReadAck(ack("AE", "RDG7"), "RDG7").kind, SendOutcome::Kind::kRetry);
  EXPECT_EQ(ReadAck(ack("AR", "RDG7"), "RDG7").kind, SendOutcome::Kind::kRefused);
  EXPECT_EQ(ReadAck(ack("CR", "RDG7"), "RDG7").kind, SendOutcome::Kind::kRefused);
  EXPECT_EQ(ReadAck(ack("AA", "RDG8"), "RDG7").kind, SendOutcome::Kind::kRetry)
      << "an ACK of another message";
  EXPECT_EQ(ReadAck("MSH|^~\\&|HIS\r", "RDG7").kind, SendOutcome::Kind::kRetry);
  EXPECT_EQ(ReadAck("garbage", "RDG7").kind, SendOutcome::Kind::kRetry);
}

TEST(ReadAckTest, NoListenerIsUnreachable) {
  // Port 1 (tcpmux): nothing listens there on a test machine.
  rdg::v1::Hl7Destination his;
  his.set_address("127.0.0.1:1");
  SendOutcome o = SendMllp(his, "MSH|^~\\&|RDG\r", absl::Seconds(2), {});
  EXPECT_EQ(o.kind, SendOutcome::Kind::kRetry);
  EXPECT_TRUE(o.unreachable);
  // Over TLS, the same; and a CA file that cannot be read is said, not sent without it.
  his.set_tls(true);
  his.set_ca_file("/nonexistent/his-ca.pem");
  o = SendMllp(his, "MSH|^~\\&|RDG\r", absl::Seconds(2), {});
  EXPECT_EQ(o.kind, SendOutcome::Kind::kRetry);
  EXPECT_THAT(o.detail, ::testing::HasSubstr("ca_file"));
}

}  // namespace
}  // namespace rdg::outbound
