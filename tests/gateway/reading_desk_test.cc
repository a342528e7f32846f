#include "gateway/worklist/index_reading_desk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "storage/sqlite_index_store.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/temp_dir.h"
#include "tests/mocks/test_index.h"

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
    for (auto [name, inst] :
         {std::pair{"county-a/imaging", "county-a"}, std::pair{"county-b/imaging", "county-b"},
          std::pair{"county-a/lab", "county-a"}, std::pair{"city/ecg-consult", "city"},
          std::pair{"city/radiology-consult", "city"}}) {
      auto* q = config_.add_queues();
      q->set_name(name);
      q->set_institution(inst);
      q->add_exam_types(std::string(name).find("ecg") != std::string::npos ? "ECG" : "CT");
    }
    for (auto [id, parent] :
         {std::pair{"county-a", "city"}, std::pair{"county-b", "city"}, std::pair{"city", ""}}) {
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
    index_ = testing::OpenTestIndex(dir_);
    ASSERT_NE(index_, nullptr);
    desk_ = std::make_unique<IndexReadingDesk>(config_, testing::ReadingDeskStores(*index_), *sla_,
                                               clock_);
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
    n.exam.patient.name = next_name_;
    n.exam.patient.sex = next_sex_;
    n.exam.patient.birth_date = next_birth_date_;
    n.exam.origin_institution = n.object.origin_institution = "clinic-a1";
    n.exam.study_instance_uid = study;
    n.object.sop_instance_uid = study + ".1";
    n.object.sha256_hex = "sha" + study;
    n.object.received_at = clock_.Now();
    n.routing = {queue, storage::Priority::kStat, clock_.Now() + absl::Minutes(30),
                 clock_.Now() + absl::Minutes(10), "rule"};
    return index_->CommitObjects({n})[0]->exam_id;
  }

  //! Demographics of the exams AddExam makes next.
  std::string next_name_ = "ZHANG^SAN=张三";
  std::string next_sex_ = "M";
  std::string next_birth_date_ = "19900307";
  testing::TempDir dir_;
  FakeClock clock_;
  rdg::v1::GatewayConfig config_;
  std::unique_ptr<storage::IndexStore> index_;
  std::unique_ptr<routing::SlaTable> sla_;
  std::unique_ptr<IndexReadingDesk> desk_;
  std::string exam_;
};

storage::ReportRecord Signed(const std::string& exam, storage::ReportStatus status,
                             const auth::Principal& reader, const std::string& supersedes = "") {
  storage::ReportRecord r;
  r.exam_id = exam;
  r.status = status;
  r.reader_user = reader.user;
  r.reader_institution = reader.institution;
  r.supersedes = supersedes;
  r.content = "content";
  r.canonical = "canonical";
  r.signature = "signature";
  return r;
}

const auth::Principal kCityReader{"city", rdg::v1::READER, "reader-city-rad"};

TEST_F(ReadingDeskTest, ReaderEscalatesToTheNextLevel) {
  EXPECT_TRUE(absl::IsFailedPrecondition(desk_->Escalate(kReaderA, exam_, "hard case").status()));
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(desk_->Escalate(kReaderA, exam_, "").status()));
  auto moved = desk_->Escalate(kReaderA, exam_, "suspected mass, needs a thoracic radiologist");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->queue, "city/radiology-consult");
  EXPECT_EQ(moved->state, storage::ExamState::kRouted);
  EXPECT_FALSE(index_->GetLiveClaim(exam_, clock_.Now())->has_value());
  // Now the city reads it; county A no longer sees it.
  EXPECT_TRUE(absl::IsNotFound(desk_->Claim(kReaderA, exam_).status()));
  EXPECT_TRUE(desk_->Claim(kCityReader, exam_).ok());
  auto events = *index_->ListEvents(exam_);
  bool found = false;
  for (const auto& e : events) {
    if (e.state == storage::ExamState::kEscalated) {
      found = true;
      EXPECT_EQ(e.actor, "reader-a-rad");
      EXPECT_EQ(e.detail,
                "county-a/imaging -> city/radiology-consult: suspected mass, needs a "
                "thoracic radiologist");
    }
  }
  EXPECT_TRUE(found);
  // The reason travels with the exam to the desk that receives it.
  const storage::ExamRecord at_city = **index_->GetExam(exam_);
  EXPECT_EQ(at_city.escalated_by, "reader-a-rad");
  EXPECT_EQ(at_city.escalation_reason, "suspected mass, needs a thoracic radiologist");
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
  IndexReadingDesk desk(config, testing::ReadingDeskStores(*index_), *sla_, clock_);
  const std::string mammo = AddExam("9.1", "county-a/imaging", "P-9", "", "MG");
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(*desk.EscalateOverdue(), 1);  // the CT: to the city's CT consultation queue
  EXPECT_EQ((*index_->GetExam(exam_))->queue, "city/radiology-consult");
  EXPECT_EQ((*index_->GetExam(mammo))->queue, "county-a/imaging")
      << "no consultation queue reads MG";
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
  ASSERT_TRUE(desk_->Claim(kReaderA, current).ok());
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

TEST_F(ReadingDeskTest, PriorsAreForTheClaimHolderOrABrokenGlassWithAReason) {
  const std::string id = "110101199003074514";
  const std::string current = AddExam("5.1", "county-a/imaging", "A-77", id);
  const std::string earlier = AddExam("5.2", "county-b/imaging", "B-12", id);
  auto refused = desk_->Priors(kReaderA, current);
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("claim it first"));
  ASSERT_TRUE(desk_->Claim(kReaderA2, current).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Priors(kReaderA, current).status()))
      << "another reader's claim gives this reader nothing";
  EXPECT_TRUE(
      absl::IsInvalidArgument(desk_->Priors(kReaderA, current, std::string(501, 'x')).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(desk_->Priors(kReaderA, current, " x ").status()))
      << "a reason is more than a keystroke";
  auto glass = desk_->Priors(kReaderA, current, "  consultation by phone with Dr Li  ");
  ASSERT_TRUE(glass.ok()) << glass.status();
  ASSERT_EQ(glass->priors.size(), 1u);
  EXPECT_EQ(glass->priors[0].exam_id, earlier);
  storage::AuditQuery q;
  q.exam_id = current;
  auto audit = index_->ListAudit(q);
  ASSERT_TRUE(audit.ok());
  bool broke = false;
  for (const auto& a : *audit) {
    if (a.action == "break_glass") {
      broke = true;
      EXPECT_EQ(a.user, "reader-a-rad");
      EXPECT_EQ(a.detail, "priors: consultation by phone with Dr Li");
    }
  }
  EXPECT_TRUE(broke);
  // The other county's reader, with the earlier exam in their queue but not claimed: refused.
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Priors(kReaderB, earlier).status()));
}

TEST_F(ReadingDeskTest, TheAuthorOfAFinalReportKeepsAccessForAWhileOnly) {
  const std::string id = "110101199003074514";
  const std::string current = AddExam("5.3", "county-a/imaging", "A-88", id);
  AddExam("5.4", "county-b/imaging", "B-88", id);
  ASSERT_TRUE(desk_->Claim(kReaderA, current).ok());
  ASSERT_TRUE(
      index_->AddReport(Signed(current, storage::ReportStatus::kFinal, kReaderA), clock_.Now())
          .ok());
  EXPECT_TRUE(desk_->Priors(kReaderA, current).ok()) << "the author, for an addendum";
  EXPECT_TRUE(desk_->ExamInContextOfWork(kReaderA, current, "reports", "").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Priors(kReaderA2, current).status()));
  clock_.Advance(ReadingDesk::kAuthorAccess + absl::Minutes(1));
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Priors(kReaderA, current).status()))
      << "a report signed long ago opens no patient's record";
}

//! Conflicts listed for the administrators, as "kind exam other fields".
std::vector<std::string> Conflicts(storage::IndexStore& index) {
  std::vector<std::string> out;
  auto conflicts = index.ListIdentityConflicts(absl::InfinitePast(), 100);
  for (const auto& c : *conflicts) {
    out.push_back(absl::StrCat(storage::Name(c.kind), " ", c.exam_id, " ", c.other_exam_id, " ",
                               absl::StrJoin(c.fields, ",")));
  }
  return out;
}

TEST_F(ReadingDeskTest, DifferentPeopleSharingAnIdentifierAreNeverPriorsAndAreListed) {
  // Exams indexed before identity checks: a placeholder "national ID" at two counties.
  next_name_ = "LI^SI";
  const std::string li = AddExam("6.1", "county-a/imaging", "A-1", "000000000000000000");
  next_name_ = "WU^SHI";
  const std::string wu = AddExam("6.2", "county-b/imaging", "B-1", "000000000000000000");
  // A valid national ID given for two people (F 2001, M 1970).
  const std::string id = "110101197001011238";  // born 1970-01-01, male
  next_name_ = "QIAN^QI", next_sex_ = "F", next_birth_date_ = "20010101";
  const std::string qian = AddExam("6.3", "county-a/imaging", "A-2", id);
  next_name_ = "ZHANG^SAN", next_sex_ = "M", next_birth_date_ = "19700101";
  const std::string zhang = AddExam("6.4", "county-b/imaging", "B-2", id);
  // Local patient ID "0" at one clinic for two people — even of one name, sex and birth date.
  next_name_ = "ZHAO^LIU", next_sex_ = "M", next_birth_date_ = "19800101";
  const std::string zhao = AddExam("6.5", "county-a/imaging", "0");
  const std::string zhao2 = AddExam("6.6", "county-a/imaging", "0");
  // The same local ID for two people with one alphabetic name but other characters.
  next_name_ = "ZHANG^WEI=张伟";
  const std::string wei = AddExam("6.7", "county-a/imaging", "A-6");
  next_name_ = "ZHANG^WEI=章伟";
  const std::string wei2 = AddExam("6.8", "county-a/imaging", "A-6");
  // Local ID A-7 without a birth date on one side: not enough to say they are one person.
  next_name_ = "ZHOU^JIU", next_birth_date_ = "";
  const std::string zhou = AddExam("6.9", "county-a/imaging", "A-7");
  next_birth_date_ = "19800101";
  const std::string zhou2 = AddExam("6.10", "county-a/imaging", "A-7");
  for (const std::string& exam : {li, qian, zhang, zhao, zhao2, wei, wei2, zhou, zhou2}) {
    ASSERT_TRUE(desk_->Claim(exam == zhang ? kReaderB : kReaderA, exam).ok());
    auto view = desk_->Priors(exam == zhang ? kReaderB : kReaderA, exam);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_TRUE(view->priors.empty()) << exam << " linked to " << view->priors[0].exam_id;
  }
  auto pair = [](const std::string& a, const std::string& b, const std::string& fields) {
    return absl::StrCat("DEMOGRAPHICS_DISAGREE ", std::min(a, b), " ", std::max(a, b), " ", fields);
  };
  EXPECT_THAT(Conflicts(*index_), ::testing::UnorderedElementsAre(
                                      pair(qian, zhang, "name,sex,birth date"),
                                      pair(wei, wei2, "name"), pair(zhou, zhou2, "birth date")))
      << "placeholders (national 000…, local 0) link nothing, so there is nothing to review; "
         "each pair is listed once";
  (void)wu;
}

TEST_F(ReadingDeskTest, AValidNationalIdWithAgreeingDemographicsLinksAcrossCounties) {
  const std::string id = "110101197001011238";
  next_name_ = "ZHANG^SAN=张三", next_sex_ = "M", next_birth_date_ = "19700101";
  const std::string here = AddExam("7.1", "county-a/imaging", "A-9", id);
  next_name_ = "张三";  // written in characters only at the other county: the same written form
  const std::string there = AddExam("7.2", "county-b/imaging", "B-9", id);
  next_name_ = "ZHANG^SAN";  // pinyin only: nothing says 张三 is ZHANG SAN
  const std::string pinyin = AddExam("7.3", "county-b/imaging", "B-9", id);
  ASSERT_TRUE(desk_->Claim(kReaderB, there).ok());
  auto view = desk_->Priors(kReaderB, there);
  ASSERT_TRUE(view.ok()) << view.status();
  std::vector<std::string> ids;
  for (const auto& p : view->priors) ids.push_back(p.exam_id);
  EXPECT_THAT(ids, ::testing::ElementsAre(here));
  EXPECT_THAT(Conflicts(*index_),
              ::testing::ElementsAre(absl::StrCat("DEMOGRAPHICS_DISAGREE ", std::min(there, pinyin),
                                                  " ", std::max(there, pinyin), " name")));
}

// --- Desks -------------------------------------------------------------------------------------

TEST_F(ReadingDeskTest, EachReaderReadsOnlyTheQueuesOfTheirDesks) {
  rdg::v1::GatewayConfig config = config_;
  auto* imaging = config.add_desks();
  imaging->set_name("county-a/imaging-desk");
  imaging->set_institution("county-a");
  imaging->add_queues("county-a/imaging");
  imaging->add_readers("reader-a-rad");
  auto* lab = config.add_desks();
  lab->set_name("county-a/lab-desk");
  lab->set_institution("county-a");
  lab->add_queues("county-a/lab");
  lab->add_readers("reader-a-lab");
  IndexReadingDesk desk(config, testing::ReadingDeskStores(*index_), *sla_, clock_);
  const std::string lab_exam = AddExam("8.1", "county-a/lab", "P-8", "", "LAB");
  const std::string county_b = AddExam("8.2", "county-b/imaging");
  auto ids = [&](const auth::Principal& reader) {
    std::vector<std::string> out;
    auto page = desk.Worklist(reader, {});
    for (const auto& e : page->entries) out.push_back(e.exam.exam_id);
    return out;
  };
  EXPECT_THAT(ids(kReaderA), ::testing::ElementsAre(exam_)) << "no lab exam for radiology";
  EXPECT_THAT(ids(kReaderA2), ::testing::ElementsAre(lab_exam));
  EXPECT_TRUE(absl::IsNotFound(desk.Claim(kReaderA, lab_exam).status()));
  EXPECT_TRUE(absl::IsNotFound(desk.Claim(kReaderA2, exam_).status()));
  // A reader of county A on no desk reads nothing; county B has no desks: all its queues.
  const auth::Principal newcomer{"county-a", rdg::v1::READER, "reader-a-new"};
  EXPECT_TRUE(ids(newcomer).empty());
  EXPECT_TRUE(absl::IsNotFound(desk.Claim(newcomer, exam_).status()));
  EXPECT_THAT(ids(kReaderB), ::testing::ElementsAre(county_b));
  // What a report names as its desk: the reader's desk of the exam's queue, else none.
  EXPECT_EQ(desk.SigningDesk(kReaderA, "county-a/imaging"), "county-a/imaging-desk");
  EXPECT_EQ(desk.SigningDesk(kReaderA2, "county-a/lab"), "county-a/lab-desk");
  EXPECT_EQ(desk.SigningDesk(kReaderA, "county-a/lab"), "");
  EXPECT_EQ(desk.SigningDesk(newcomer, "county-a/imaging"), "");
  EXPECT_EQ(desk.SigningDesk(kReaderB, "county-b/imaging"), "") << "county B reads without desks";
}

// --- Addenda with authority ---------------------------------------------------------------------

TEST_F(ReadingDeskTest, OnlyTheAuthorOrAClaimForAmendmentAmendsAFinalReport) {
  EXPECT_TRUE(
      absl::IsFailedPrecondition(desk_->Claim(kReaderA, exam_, true, "wrong side").status()))
      << "nothing to amend before a final report";
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  auto final =
      index_->AddReport(Signed(exam_, storage::ReportStatus::kFinal, kReaderA), clock_.Now());
  ASSERT_TRUE(final.ok()) << final.status();
  // Another reader of the institution, no claim: refused, naming the author.
  auto refused = index_->AddReport(
      Signed(exam_, storage::ReportStatus::kAmended, kReaderA2, final->report_id), clock_.Now());
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("(reader-a-rad)"));
  auto plain = desk_->Claim(kReaderA2, exam_);
  EXPECT_TRUE(absl::IsFailedPrecondition(plain.status()));
  EXPECT_THAT(plain.status().message(), HasSubstr("claim it for amendment"));
  // Claimed for amendment: allowed; the exam stays FINAL and the history says so.
  EXPECT_TRUE(absl::IsInvalidArgument(desk_->Claim(kReaderA2, exam_, true, "").status()))
      << "a claim for amendment says why";
  ASSERT_TRUE(desk_->Claim(kReaderA2, exam_, /*for_amendment=*/true, "nodule missed").ok());
  EXPECT_EQ((*index_->GetExam(exam_))->state, storage::ExamState::kFinal);
  auto amended = index_->AddReport(
      Signed(exam_, storage::ReportStatus::kAmended, kReaderA2, final->report_id), clock_.Now());
  ASSERT_TRUE(amended.ok()) << amended.status();
  EXPECT_FALSE(index_->GetLiveClaim(exam_, clock_.Now())->has_value()) << "the addendum ends it";
  // The author of the FINAL amends again without a claim (naming the latest version).
  auto again = index_->AddReport(
      Signed(exam_, storage::ReportStatus::kAmended, kReaderA, amended->report_id), clock_.Now());
  EXPECT_TRUE(again.ok()) << again.status();
  bool claimed_for_amendment = false;
  auto events = index_->ListEvents(exam_);
  for (const auto& e : *events) {
    claimed_for_amendment |= e.state == storage::ExamState::kClaimed && e.actor == "reader-a-lab" &&
                             absl::StartsWith(e.detail, "for amendment");
  }
  EXPECT_TRUE(claimed_for_amendment);
}

TEST_F(ReadingDeskTest, ACriticalAddendumStartsTheAcknowledgementClock) {
  ASSERT_TRUE(desk_->Claim(kReaderA, exam_).ok());
  auto final =
      index_->AddReport(Signed(exam_, storage::ReportStatus::kFinal, kReaderA), clock_.Now());
  ASSERT_TRUE(final.ok());
  storage::ReportRecord addendum =
      Signed(exam_, storage::ReportStatus::kAmended, kReaderA, final->report_id);
  addendum.critical = true;
  addendum.acknowledge_by = clock_.Now() + absl::Minutes(30);
  ASSERT_TRUE(index_->AddReport(addendum, clock_.Now()).ok());
  clock_.Advance(absl::Minutes(31));
  auto breaches = index_->DetectBreaches(clock_.Now(), 100);
  ASSERT_TRUE(breaches.ok());
  bool critical_late = false;
  for (const auto& b : *breaches) {
    critical_late |= b.exam_id == exam_ && b.stage == storage::Stage::kCriticalAcknowledgement;
  }
  EXPECT_TRUE(critical_late) << "an unacknowledged critical addendum is a breach";
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
  AddExam("3.3", "county-a/lab", "A-2", "", "LAB",
          {Lab("K", "9.9", "20261105")});  // another patient
  const std::string current = AddExam("3.5", "county-a/lab", "A-1", id, "LAB",
                                      {Lab("K", "5.1", "20261120"), Lab("NA", "140", "20261120")});
  ASSERT_TRUE(desk_->Claim(kReaderA, current).ok());
  ASSERT_TRUE(desk_->Claim(kReaderA, ecg).ok());
  auto view = desk_->Priors(kReaderA, current);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->priors.size(), 1u);  // not the CT nor the ECG
  EXPECT_EQ(view->priors[0].exam_id, old_lab);
  std::vector<std::string> trend;
  for (const auto& r : view->lab_results) trend.push_back(r.code + "=" + r.value + "@" + r.exam_id);
  // GLU is not a test of this exam; K is, oldest first; the other patient's 9.9 never shows.
  EXPECT_THAT(trend,
              ::testing::ElementsAre("K=4.0@" + old_lab, "K=5.1@" + current, "NA=140@" + current));
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
  EXPECT_EQ((*index_->GetExam(exam_))->state, storage::ExamState::kRouted);
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
  // A clinic sees no priors, not even of its own patient's exam, and no break-glass opens them.
  EXPECT_TRUE(absl::IsPermissionDenied(desk_->Priors(kClinic, exam_).status()));
  EXPECT_TRUE(
      absl::IsPermissionDenied(desk_->Priors(kClinic, exam_, "second opinion needed").status()));
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
