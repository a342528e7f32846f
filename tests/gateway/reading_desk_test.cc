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
                              std::pair{"county-b/imaging", "county-b"},
                              std::pair{"county-a/lab", "county-a"},
                              std::pair{"city/ecg-consult", "city"},
                              std::pair{"city/radiology-consult", "city"}}) {
      auto* q = config_.add_queues();
      q->set_name(name);
      q->set_institution(inst);
      q->add_exam_types(std::string(name).find("ecg") != std::string::npos ? "ECG" : "CT");
    }
    for (auto [id, parent] : {std::pair{"county-a", "city"}, std::pair{"county-b", "city"},
                              std::pair{"city", ""}}) {
      auto* i = config_.add_institutions();
      i->set_id(id);
      i->set_parent(parent);
    }
    auto* sla = config_.add_sla_policies();
    sla->set_exam_type("*");
    sla->set_priority(rdg::v1::STAT);
    sla->set_received_to_claimed_minutes(10);
    sla_ = std::make_unique<routing::SlaTable>(config_);
    config_.mutable_claims()->set_lease_seconds(600);
    index_ = *storage::SqliteIndexStore::Open(dir_.Join("index.sqlite"));
    desk_ = std::make_unique<ReadingDesk>(config_, *index_, *sla_, clock_);
    exam_ = AddExam("1.1", "county-a/imaging");
  }
  std::string AddExam(const std::string& study, const std::string& queue,
                      const std::string& patient_id = "P-1", const std::string& national_id = "",
                      const std::string& exam_type = "CT",
                      std::vector<storage::LabResultRecord> lab_results = {}) {
    storage::NewObject n;
    n.exam.exam_type = exam_type;
    n.lab_results = std::move(lab_results);
    n.exam.patient.patient_id = patient_id;
    n.exam.patient.national_id = national_id;
    n.exam.origin_institution = n.object.origin_institution = "clinic-a1";
    n.exam.study_instance_uid = study;
    n.object.sop_instance_uid = study + ".1";
    n.object.sha256_hex = "sha" + study;
    n.object.received_at = clock_.Now();
    n.routing = {queue, rdg::v1::STAT, clock_.Now() + absl::Minutes(30), clock_.Now() + absl::Minutes(10), "rule"};
    return index_->CommitObjects({n})[0]->exam_id;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  rdg::v1::GatewayConfig config_;
  std::unique_ptr<storage::SqliteIndexStore> index_;
  std::unique_ptr<routing::SlaTable> sla_;
  std::unique_ptr<ReadingDesk> desk_;
  std::string exam_;
};

const auth::Principal kCityReader{"city", rdg::v1::READER, "reader-city-rad"};

TEST_F(ReadingDeskTest, ReaderEscalatesToTheNextLevel) {
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->Escalate(kReaderA, exam_, "hard case").status()));
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(desk_->Escalate(kReaderA, exam_, "").status()));
  auto moved = desk_->Escalate(kReaderA, exam_, "suspected mass, needs a thoracic radiologist");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->queue, "city/radiology-consult");
  EXPECT_EQ(moved->state, rdg::v1::ROUTED);
  EXPECT_FALSE(index_->GetLiveClaim(exam_, clock_.Now())->has_value());
  // Now the city reads it; county A no longer sees it.
  EXPECT_TRUE(absl::IsNotFound(desk_->Claim(kReaderA, exam_).status()));
  EXPECT_TRUE(desk_->Claim(kCityReader, exam_).ok());
  auto events = *index_->ListEvents(exam_);
  bool found = false;
  for (const auto& e : events) {
    if (e.state == rdg::v1::ESCALATED) {
      found = true;
      EXPECT_EQ(e.actor, "reader-a-rad");
      EXPECT_EQ(e.detail, "county-a/imaging -> city/radiology-consult: suspected mass, needs a "
                          "thoracic radiologist");
    }
  }
  EXPECT_TRUE(found);
  // The city has no level above it for this exam.
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->Escalate(kCityReader, exam_, "more").status()));
}

TEST_F(ReadingDeskTest, UnclaimedPastTheClaimTargetIsEscalatedAutomatically) {
  clock_.Advance(absl::Minutes(9));
  EXPECT_EQ(*desk_->EscalateOverdue(), 0);
  clock_.Advance(absl::Minutes(2));  // past the 10-minute STAT claim target
  EXPECT_EQ(*desk_->EscalateOverdue(), 1);
  auto exam = **index_->GetExam(exam_);
  EXPECT_EQ(exam.queue, "city/radiology-consult");
  EXPECT_EQ(exam.claim_due_at, clock_.Now() + absl::Minutes(10));  // a new target up there
  EXPECT_EQ(index_->ListEvents(exam_)->back().actor, "system");
  // Unclaimed at the city too: there is nowhere higher, so it stays and is not re-checked.
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(*desk_->EscalateOverdue(), 0);
  EXPECT_EQ((*index_->GetExam(exam_))->queue, "city/radiology-consult");
  EXPECT_EQ((*index_->GetExam(exam_))->claim_due_at, absl::InfiniteFuture());
}

TEST_F(ReadingDeskTest, TheFallbackQueueIsNeverAnEscalationTarget) {
  // A triage queue reading "anything" at the next level, listed first: it must not take the
  // overdue exams of the level below.
  rdg::v1::GatewayConfig config = config_;
  auto* triage = config.add_queues();
  triage->set_name("city/triage");
  triage->set_institution("city");
  config.mutable_queues()->SwapElements(0, config.queues_size() - 1);
  config.set_fallback_queue("city/triage");
  ReadingDesk desk(config, *index_, *sla_, clock_);
  const std::string mammo = AddExam("9.1", "county-a/imaging", "P-9", "", "MG");
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(*desk.EscalateOverdue(), 1);  // the CT: to the city's CT consultation queue
  EXPECT_EQ((*index_->GetExam(exam_))->queue, "city/radiology-consult");
  EXPECT_EQ((*index_->GetExam(mammo))->queue, "county-a/imaging") << "no consultation queue reads MG";
}

TEST_F(ReadingDeskTest, ClaimedExamsAreNotEscalated) {
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(*desk_->EscalateOverdue(), 0);
}

TEST_F(ReadingDeskTest, PriorsFollowNationalIdAcrossInstitutionsAndAreAudited) {
  const std::string id = "110101199003074514";
  const std::string current = AddExam("2.1", "county-a/imaging", "A-77", id);
  const std::string same_person_elsewhere = AddExam("2.2", "county-b/imaging", "B-12", id);
  const std::string same_clinic_same_id = AddExam("2.3", "county-a/imaging", "A-77");
  AddExam("2.4", "county-a/imaging", "A-78");  // someone else
  auto priors = desk_->Priors(kReaderA, current);
  ASSERT_TRUE(priors.ok()) << priors.status();
  std::vector<std::string> ids;
  for (const auto& p : priors->priors) ids.push_back(p.exam_id);
  EXPECT_THAT(ids, ::testing::UnorderedElementsAre(same_person_elsewhere, same_clinic_same_id));
  storage::AuditQuery q;
  q.exam_id = same_person_elsewhere;
  auto audit = index_->ListAudit(q);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].action, "view_prior");
  EXPECT_EQ((*audit)[0].user, "reader-a-rad");
  EXPECT_TRUE(absl::IsNotFound(desk_->Priors(kReaderB, current).status()));
}

storage::LabResultRecord Lab(const std::string& code, const std::string& value,
                             const std::string& observed_at) {
  storage::LabResultRecord r;
  r.origin_institution = "clinic-a1";
  r.code = code;
  r.value = value;
  r.observed_at = observed_at;
  return r;
}

TEST_F(ReadingDeskTest, LabPriorsShowATrendOfTheSameTestsOnlyAndEcgsOnlyEcgs) {
  const std::string id = "110101199003074514";
  const std::string old_lab = AddExam("3.1", "county-b/imaging", "B-1", id, "LAB",
                                      {Lab("K", "4.0", "20261101"), Lab("GLU", "5.0", "20261101")});
  AddExam("3.2", "county-a/imaging", "A-1", id, "CT");
  const std::string ecg = AddExam("3.4", "county-a/imaging", "A-1", id, "ECG");
  AddExam("3.3", "county-a/lab", "A-2", "", "LAB", {Lab("K", "9.9", "20261105")});  // another patient
  const std::string current = AddExam("3.5", "county-a/lab", "A-1", id, "LAB",
                                      {Lab("K", "5.1", "20261120"), Lab("NA", "140", "20261120")});
  auto view = desk_->Priors(kReaderA, current);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->priors.size(), 1u);  // not the CT nor the ECG
  EXPECT_EQ(view->priors[0].exam_id, old_lab);
  std::vector<std::string> trend;
  for (const auto& r : view->lab_results) trend.push_back(r.code + "=" + r.value + "@" + r.exam_id);
  // GLU is not a test of this exam; K is, oldest first; the other patient's 9.9 never shows.
  EXPECT_THAT(trend, ::testing::ElementsAre("K=4.0@" + old_lab, "K=5.1@" + current,
                                            "NA=140@" + current));
  auto ecg_view = desk_->Priors(kReaderA, ecg);
  ASSERT_TRUE(ecg_view.ok());
  EXPECT_TRUE(ecg_view->priors.empty());  // no earlier ECG; the CT and labs are not shown
  EXPECT_TRUE(ecg_view->lab_results.empty());
}

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
