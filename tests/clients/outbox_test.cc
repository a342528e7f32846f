// The edge agent's outbox: durability order, taking and backing off, sent and dead items, crash
// recovery, figures for `agent status`, suspects of a gateway failure, the operators' dead-letter
// tools; and how forwarding failures are classified.
#include "clients/agent/outbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "clients/agent/agent_config.h"
#include "clients/agent/dead_letters.h"
#include "clients/agent/forwarder.h"
#include "storage/base/digest.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixSeconds(1795400000);

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override { outbox_ = Open(); }

  std::unique_ptr<Outbox> Open() {
    auto o = Outbox::Open(dir_.path());
    EXPECT_TRUE(o.ok()) << o.status();
    return *std::move(o);
  }

  int64_t Put(const std::string& bytes, const std::string& label,
              rdg::v1::ObjectKind kind = rdg::v1::DICOM, absl::Time at = kT0) {
    const std::string path = outbox_->NewObjectPath(kind);
    std::ofstream(path, std::ios::binary) << bytes;
    auto id = outbox_->Add(path, kind, label, "dicom TEST", at);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }

  //! Adds "object LABEL" for each label, each from a thread of its own, while another connection
  //! holds the database: the first Add leads a commit that waits for that writer, the others
  //! queue behind it. The writer then runs `writer_sql` (if any), commits and lets them through.
  std::vector<absl::StatusOr<int64_t>> AddBehindAWriter(const std::vector<std::string>& labels,
                                                        const char* writer_sql) {
    sqlite3* other = nullptr;
    EXPECT_EQ(sqlite3_open(dir_.Join("agent.db").c_str(), &other), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    std::vector<absl::StatusOr<int64_t>> ids(labels.size(), absl::UnknownError("not run"));
    std::vector<std::thread> devices;
    auto add = [&](size_t i) {
      devices.emplace_back([&, i] { ids[i] = Add("object " + labels[i], labels[i]); });
    };
    // Well within SQLite's 10 s busy timeout, for which the leader waits.
    const absl::Time deadline = absl::Now() + absl::Seconds(8);
    add(0);
    while (outbox_->commits_in_flight() < 1 && absl::Now() < deadline) std::this_thread::yield();
    for (size_t i = 1; i < labels.size(); ++i) add(i);
    while (outbox_->commits_in_flight() < labels.size() && absl::Now() < deadline) {
      std::this_thread::yield();
    }
    EXPECT_EQ(outbox_->commits_in_flight(), labels.size()) << "the first commit waits";
    if (*writer_sql != '\0') {
      EXPECT_EQ(sqlite3_exec(other, writer_sql, nullptr, nullptr, nullptr), SQLITE_OK);
    }
    EXPECT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(other);
    for (auto& t : devices) t.join();
    return ids;
  }

  //! Add from a device's thread: the bytes written to a new object file, then added.
  absl::StatusOr<int64_t> Add(const std::string& bytes, const std::string& label) {
    const std::string path = outbox_->NewObjectPath(rdg::v1::DICOM);
    std::ofstream(path, std::ios::binary) << bytes;
    return outbox_->Add(path, rdg::v1::DICOM, label, "dicom TEST", kT0);
  }

  std::vector<std::string> Files(const std::string& sub) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_.Join(sub))) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  testing::TempDir dir_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, AddKeepsTheBytesWithTheirDigestAndTakeReturnsThemOldestFirst) {
  const int64_t a = Put("first object", "1.2.3");
  const int64_t b = Put("second", "MSG-1", rdg::v1::HL7V2_LAB);
  EXPECT_LT(a, b);
  auto first = outbox_->Take(kT0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, a);
  EXPECT_EQ(testing::ReadFileBytes(first->path), "first object");
  EXPECT_EQ(first->sha256, storage::ToRaw(storage::Sha256::Of("first object")));
  EXPECT_EQ(first->size, 12);
  EXPECT_EQ(first->label, "1.2.3");
  EXPECT_EQ(first->kind, rdg::v1::DICOM);
  auto second = outbox_->Take(kT0);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, b);
  EXPECT_EQ(second->kind, rdg::v1::HL7V2_LAB);
  EXPECT_THAT(second->path, ::testing::EndsWith(".hl7"));
  EXPECT_FALSE(outbox_->Take(kT0).has_value()) << "both are taken";
}

TEST_F(OutboxTest, ObjectsAddedAtOnceShareOneTransaction) {
  const std::vector<std::string> labels = {"1.2.0", "1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5"};
  auto ids = AddBehindAWriter(labels, "");
  EXPECT_EQ(outbox_->commit_batches(), 2);
  std::set<int64_t> distinct;
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(ids[i].ok()) << i << ": " << ids[i].status();
    distinct.insert(*ids[i]);
  }
  EXPECT_THAT(distinct, SizeIs(labels.size()));
  // Each row names its own bytes.
  std::set<std::string> taken;
  while (auto item = outbox_->Take(kT0)) {
    EXPECT_EQ(testing::ReadFileBytes(item->path), "object " + item->label);
    EXPECT_EQ(item->sha256, storage::ToRaw(storage::Sha256::Of("object " + item->label)));
    taken.insert(item->label);
  }
  EXPECT_THAT(taken, SizeIs(labels.size()));
}

TEST_F(OutboxTest, ARowThatFailsFailsItsWholeBatchAndLeavesNoFile) {
  // The writer adds a trigger that refuses one label: the second batch holds it and four others.
  auto ids =
      AddBehindAWriter({"1.3.0", "1.3.1", "1.3.2", "poison", "1.3.4", "1.3.5"},
                       "CREATE TRIGGER refuse BEFORE INSERT ON outbox WHEN NEW.label = 'poison' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  ASSERT_TRUE(ids[0].ok()) << ids[0].status();  // committed alone, before the others queued
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_FALSE(ids[i].ok()) << i;
  EXPECT_EQ(outbox_->PendingCount(), 1);
  EXPECT_THAT(Files("outbox/objects"), SizeIs(1)) << "every refused object's file is removed";
}

TEST_F(OutboxTest, AnObjectThatCannotBeMadeDurableIsNotQueued) {
  const std::string path = outbox_->NewObjectPath(rdg::v1::DICOM);
  fs::remove(path);  // the receiver failed before its file existed
  auto prepared = outbox_->Prepare(path);
  EXPECT_FALSE(prepared.ok());
  EXPECT_FALSE(outbox_->Add(path, rdg::v1::DICOM, "1.2.3", "dicom TEST", kT0).ok());
  EXPECT_EQ(outbox_->PendingCount(), 0);
  EXPECT_EQ(outbox_->commit_batches(), 0);
}

TEST_F(OutboxTest, ASecondOutboxOnTheSameDataDirIsRefused) {
  auto second = Outbox::Open(dir_.path());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use by pid"));
}

TEST_F(OutboxTest, ADataDirSpelledOtherwiseKeepsItsPendingObjects) {
  const int64_t a = Put("still here", "A");
  outbox_.reset();
  auto respelled = Outbox::Open(dir_.path() + "/./");  // the same folder, another spelling
  ASSERT_TRUE(respelled.ok()) << respelled.status();
  outbox_ = *std::move(respelled);
  auto item = outbox_->Take(kT0);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->id, a);
  EXPECT_EQ(testing::ReadFileBytes(item->path), "still here");
}

TEST_F(OutboxTest, NewObjectPathsAreReservedEmptyFiles) {
  const std::string a = outbox_->NewObjectPath(rdg::v1::DICOM);
  const std::string b = outbox_->NewObjectPath(rdg::v1::HL7V2_LAB);
  EXPECT_NE(a, b);
  EXPECT_EQ(fs::file_size(a), 0u);
  EXPECT_EQ(fs::file_size(b), 0u);
  EXPECT_THAT(a, ::testing::EndsWith(".dcm"));
  EXPECT_THAT(b, ::testing::EndsWith(".hl7"));
}

TEST_F(OutboxTest, RetryWaitsUntilItsTimeAndCountsTheAttempt) {
  const int64_t a = Put("a", "A");
  const int64_t b = Put("b", "B");
  ASSERT_EQ(outbox_->Take(kT0)->id, a);
  outbox_->Retry(a, "UNAVAILABLE: down", kT0 + absl::Seconds(10), kT0);
  EXPECT_EQ(outbox_->Take(kT0)->id, b);  // a waits, b is next
  EXPECT_FALSE(outbox_->Take(kT0 + absl::Seconds(9)).has_value());
  EXPECT_EQ(outbox_->NextDue(), kT0 + absl::Seconds(10));
  auto again = outbox_->Take(kT0 + absl::Seconds(10));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, a);
  EXPECT_EQ(again->attempts, 1);
  const OutboxStats st = outbox_->Stats(kT0 + absl::Seconds(11));
  EXPECT_EQ(st.last_error, "UNAVAILABLE: down");
  EXPECT_EQ(st.pending, 2);
}

TEST_F(OutboxTest, SentRemovesTheFileAndKeepsTheHistory) {
  const int64_t a = Put(std::string(1000, 'x'), "A");
  auto item = outbox_->Take(kT0);
  outbox_->SetSession(a, "session-1");
  ASSERT_TRUE(outbox_->Sent(a, {"ex-1", 1000, 0}, kT0 + absl::Seconds(2)).ok());
  EXPECT_FALSE(fs::exists(item->path));
  EXPECT_THAT(Files("outbox/objects"), SizeIs(0));
  const OutboxStats st = outbox_->Stats(kT0 + absl::Seconds(30));
  EXPECT_EQ(st.pending, 0);
  EXPECT_EQ(st.sent, 1);
  EXPECT_EQ(st.sent_bytes, 1000);
  EXPECT_EQ(st.sent_last_minute, 1);
  EXPECT_EQ(st.last_sent_at, kT0 + absl::Seconds(2));
  EXPECT_EQ(outbox_->PendingCount(), 0);
}

TEST_F(OutboxTest, DeadLetterKeepsTheObjectAndItsReason) {
  const int64_t a = Put("refused bytes", "1.2.840.99");
  ASSERT_TRUE(outbox_->Take(kT0).has_value());
  ASSERT_TRUE(outbox_->Dead(a, "INVALID_ARGUMENT: Waveform Data too short", kT0).ok());
  const auto dead = Files("dead-letter");
  ASSERT_THAT(dead, SizeIs(2));
  EXPECT_EQ(testing::ReadFileBytes(dir_.Join("dead-letter/" + dead[0])), "refused bytes");
  EXPECT_THAT(dead[0], ::testing::EndsWith(".dcm"));
  EXPECT_THAT(testing::ReadFileBytes(dir_.Join("dead-letter/" + dead[1])),
              HasSubstr("INVALID_ARGUMENT: Waveform Data too short"));
  const OutboxStats st = outbox_->Stats(kT0);
  EXPECT_EQ(st.dead, 1);
  EXPECT_EQ(st.pending, 0);
  EXPECT_FALSE(outbox_->Take(kT0).has_value());
}

TEST_F(OutboxTest, ReopeningKeepsPendingItemsAndSessionsAndSweepsWhatNoRowNames) {
  const int64_t a = Put("pending", "A");
  outbox_->SetSession(a, "session-7");
  ASSERT_TRUE(outbox_->Take(kT0).has_value());  // taken when the process "died"
  // A crash while receiving or before the commit leaves an object file no row names; earlier
  // versions received into outbox/tmp. None of them was acknowledged to a device.
  std::ofstream(outbox_->NewObjectPath(rdg::v1::DICOM)) << "half";
  std::ofstream(dir_.Join("outbox/objects/stray.dcm")) << "stray";
  fs::create_directories(dir_.Join("outbox/tmp"));
  std::ofstream(dir_.Join("outbox/tmp/1-1.part")) << "old half";
  outbox_.reset();
  outbox_ = Open();
  EXPECT_FALSE(fs::exists(dir_.Join("outbox/tmp")));
  EXPECT_THAT(Files("outbox/objects"), SizeIs(1));
  auto item = outbox_->Take(kT0);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->id, a);
  EXPECT_EQ(item->session_id, "session-7");
  EXPECT_EQ(testing::ReadFileBytes(item->path), "pending");
}

TEST_F(OutboxTest, StatusReadsTheFiguresWithoutTheAgent) {
  Put("abc", "A", rdg::v1::DICOM, kT0);
  Put("defg", "B", rdg::v1::DICOM, kT0 + absl::Seconds(5));
  auto st = Outbox::ReadStats(dir_.path(), kT0 + absl::Minutes(3));
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->pending, 2);
  EXPECT_EQ(st->pending_bytes, 7);
  EXPECT_EQ(st->oldest_pending, kT0);
  EXPECT_FALSE(Outbox::ReadStats(dir_.Join("nothing-here"), kT0).ok());
}

TEST_F(OutboxTest, AgentStateSurvivesReopening) {
  ASSERT_TRUE(outbox_->SetState("inbox_cursor", "42").ok());
  ASSERT_TRUE(outbox_->SetState("inbox_cursor", "43").ok());
  outbox_.reset();
  outbox_ = Open();
  EXPECT_EQ(outbox_->GetState("inbox_cursor"), "43");
  EXPECT_EQ(outbox_->GetState("unknown"), "");
}

TEST_F(OutboxTest, KnownContentIsTheNewestPendingOrSentItemsNotADeadOnes) {
  auto add = [&](const std::string& label, const std::string& key) {
    const std::string path = outbox_->NewObjectPath(rdg::v1::HL7V2_LAB);
    std::ofstream(path, std::ios::binary) << key;
    auto id = outbox_->Add(path, rdg::v1::HL7V2_LAB, label, "hl7 LIS", kT0, key);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  };
  EXPECT_FALSE(outbox_->KnownContent(rdg::v1::HL7V2_LAB, "hl7-LIS-1").has_value());
  const int64_t a = add("hl7-LIS-1", "key-a");
  EXPECT_EQ(outbox_->KnownContent(rdg::v1::HL7V2_LAB, "hl7-LIS-1"), "key-a");
  EXPECT_FALSE(outbox_->KnownContent(rdg::v1::DICOM, "hl7-LIS-1").has_value());
  ASSERT_TRUE(outbox_->Take(kT0).has_value());
  ASSERT_TRUE(outbox_->Sent(a, {"ex-1", 5, 0}, kT0).ok());
  EXPECT_EQ(outbox_->KnownContent(rdg::v1::HL7V2_LAB, "hl7-LIS-1"), "key-a");  // sent: still known
  const int64_t b = add("hl7-LIS-2", "key-b");
  ASSERT_TRUE(outbox_->Take(kT0).has_value());
  ASSERT_TRUE(outbox_->Dead(b, "refused", kT0).ok());
  // A dead letter was never accepted by the gateway: its identity is not taken by it.
  EXPECT_FALSE(outbox_->KnownContent(rdg::v1::HL7V2_LAB, "hl7-LIS-2").has_value());
}

TEST_F(OutboxTest, SuspectsAreTakenOnlyOnTheirOwn) {
  const int64_t a = Put("a", "A");
  const int64_t b = Put("b", "B");
  ASSERT_EQ(outbox_->Take(kT0)->id, a);
  EXPECT_EQ(outbox_->RecordProcessingFailure(a), 1);
  outbox_->Retry(a, "UNAVAILABLE: Socket closed", kT0 + absl::Seconds(1), kT0);
  // Not due yet: nothing to send alone; the normal queue goes on without it.
  EXPECT_FALSE(outbox_->HasDueSuspect(kT0));
  EXPECT_EQ(outbox_->Take(kT0 + absl::Seconds(2))->id, b);
  EXPECT_FALSE(outbox_->Take(kT0 + absl::Seconds(2)).has_value());
  EXPECT_TRUE(outbox_->HasDueSuspect(kT0 + absl::Seconds(2)));
  EXPECT_TRUE(outbox_->HasDueSuspect(kT0 + absl::Seconds(2)));  // looking does not take it
  auto suspect = outbox_->TakeSuspect(kT0 + absl::Seconds(2));
  ASSERT_TRUE(suspect.has_value());
  EXPECT_EQ(suspect->id, a);
  EXPECT_FALSE(outbox_->HasDueSuspect(kT0 + absl::Seconds(2)));
  EXPECT_EQ(outbox_->RecordProcessingFailure(a), 2);
}

TEST_F(OutboxTest, ADeadLetterCanBeQueuedAgainAndIsSentFromTheDeadLetterFolder) {
  const int64_t a = Put("quarantined bytes", "1.2.3");
  ASSERT_TRUE(outbox_->Take(kT0).has_value());
  EXPECT_EQ(outbox_->RecordProcessingFailure(a), 1);
  ASSERT_TRUE(outbox_->Dead(a, "the gateway failed while processing this object", kT0).ok());

  auto letters = ListDeadLetters(dir_.path());
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_THAT(*letters, SizeIs(1));
  const DeadLetter& d = (*letters)[0];
  EXPECT_EQ(d.id, a);
  EXPECT_EQ(d.label, "1.2.3");
  EXPECT_EQ(d.source, "dicom TEST");
  EXPECT_EQ(d.size, 17);
  EXPECT_THAT(d.reason, HasSubstr("failed while processing"));
  EXPECT_THAT(d.file, HasSubstr("/dead-letter/"));
  EXPECT_EQ(testing::ReadFileBytes(d.file), "quarantined bytes");

  auto queued = RetryDeadLetters(dir_.path(), a, "nurse", kT0 + absl::Minutes(5));
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_THAT(*queued, ::testing::ElementsAre(a));
  EXPECT_THAT(*ListDeadLetters(dir_.path()), SizeIs(0));
  EXPECT_THAT(Files("dead-letter"), ::testing::ElementsAre(fs::path(d.file).filename()));
  // The running agent's outbox takes it (not as a suspect: the count starts over) ...
  EXPECT_FALSE(outbox_->HasDueSuspect(kT0 + absl::Minutes(5)));
  auto item = outbox_->Take(kT0 + absl::Minutes(5));
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->id, a);
  EXPECT_EQ(item->path, d.file);
  // ... and, once sent, nothing of it is left in the folder.
  ASSERT_TRUE(outbox_->Sent(a, {"ex-1", 17, 0}, kT0 + absl::Minutes(6)).ok());
  EXPECT_THAT(Files("dead-letter"), SizeIs(0));
  auto actions = RecentOperatorActions(dir_.path(), 10);
  ASSERT_TRUE(actions.ok()) << actions.status();
  ASSERT_THAT(*actions, SizeIs(1));
  EXPECT_EQ((*actions)[0].actor, "nurse");
  EXPECT_EQ((*actions)[0].action, "retry");
  EXPECT_EQ((*actions)[0].item, a);
  EXPECT_EQ((*actions)[0].at, kT0 + absl::Minutes(5));
}

TEST_F(OutboxTest, RetryAllQueuesEveryDeadLetterAndUnknownIdsAreNamed) {
  const int64_t a = Put("a", "A");
  const int64_t b = Put("b", "B");
  const int64_t c = Put("c", "C");
  for (int64_t id : {a, b}) {
    ASSERT_TRUE(outbox_->Take(kT0).has_value());
    ASSERT_TRUE(outbox_->Dead(id, "refused", kT0).ok());
  }
  auto not_dead = RetryDeadLetters(dir_.path(), c, "nurse", kT0);
  EXPECT_TRUE(absl::IsNotFound(not_dead.status())) << not_dead.status();
  EXPECT_THAT(not_dead.status().message(), HasSubstr("item 3 is not a dead letter"));
  EXPECT_TRUE(absl::IsNotFound(PurgeDeadLetter(dir_.path(), 99, "nurse", kT0)));
  auto all = RetryDeadLetters(dir_.path(), std::nullopt, "nurse", kT0);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, ::testing::ElementsAre(a, b));
  EXPECT_EQ(outbox_->PendingCount(), 3);
  EXPECT_FALSE(RetryDeadLetters(dir_.Join("no-agent-here"), std::nullopt, "nurse", kT0).ok());
}

TEST_F(OutboxTest, PurgeRemovesTheDeadLetterAndRecordsWhatItWas) {
  const int64_t a = Put("unwanted", "1.2.840.5");
  ASSERT_TRUE(outbox_->Take(kT0).has_value());
  ASSERT_TRUE(outbox_->Dead(a, "INVALID_ARGUMENT: not a readable DICOM file", kT0).ok());
  ASSERT_TRUE(PurgeDeadLetter(dir_.path(), a, "root (sudo by wang)", kT0).ok());
  EXPECT_THAT(Files("dead-letter"), SizeIs(0));
  EXPECT_THAT(*ListDeadLetters(dir_.path()), SizeIs(0));
  EXPECT_EQ(outbox_->Stats(kT0).dead, 0);
  auto actions = RecentOperatorActions(dir_.path(), 10);
  ASSERT_THAT(*actions, SizeIs(1));
  EXPECT_EQ((*actions)[0].action, "purge");
  EXPECT_EQ((*actions)[0].actor, "root (sudo by wang)");
  EXPECT_THAT((*actions)[0].detail, HasSubstr("1.2.840.5"));
  EXPECT_THAT((*actions)[0].detail, HasSubstr(storage::ToHex(storage::Sha256::Of("unwanted"))));
  EXPECT_THAT((*actions)[0].detail, HasSubstr("not a readable DICOM file"));
}

TEST_F(OutboxTest, AnOutboxOfTheFirstReleaseGainsTheNewColumns) {
  outbox_.reset();
  const std::string db_path = dir_.Join("old/agent.db");
  fs::create_directories(dir_.Join("old"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  // The outbox table as the first release created it, with one pending item.
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER "
                         "NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, sha256 BLOB NOT "
                         "NULL, label TEXT NOT NULL, source TEXT NOT NULL, received_at INTEGER NOT "
                         "NULL, state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', "
                         "'sent', 'dead')), attempts INTEGER NOT NULL DEFAULT 0, session_id TEXT "
                         "NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '', error_at "
                         "INTEGER, done_at INTEGER, exam_id TEXT NOT NULL DEFAULT '', bytes_sent "
                         "INTEGER NOT NULL DEFAULT 0, resumed_from INTEGER);"
                         "INSERT INTO outbox (kind, file, size, sha256, label, source, received_at)"
                         " VALUES (1, 'x.dcm', 1, x'00', 'L', 'dicom OLD', 0);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto reopened = Outbox::Open(dir_.Join("old"));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->PendingCount(), 1);              // the item is still there ...
  EXPECT_EQ((*reopened)->RecordProcessingFailure(1), 1);  // ... and so is the new column
}

TEST(ForwarderTest, TheGatewaysVerdictIsFinalEverythingElseIsRetried) {
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::INVALID_ARGUMENT), FailureKind::kRefused);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::ALREADY_EXISTS), FailureKind::kRefused);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::RESOURCE_EXHAUSTED), FailureKind::kRefused);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::ABORTED), FailureKind::kTransient);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::INTERNAL), FailureKind::kTransient);
  // A certificate the gateway does not (yet) accept is not the object's fault.
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::UNAVAILABLE), FailureKind::kConnectivity);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::PERMISSION_DENIED), FailureKind::kConnectivity);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::UNAUTHENTICATED), FailureKind::kConnectivity);
  EXPECT_EQ(ClassifyFailure(grpc::StatusCode::CANCELLED), FailureKind::kConnectivity);
}

class AgentConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<rdg::v1::AgentConfig> Load(const std::string& text) {
    return LoadAgentConfig(dir_.Write("agent.textproto", text));
  }
  const std::string kGateway =
      "gateway { address: \"127.0.0.1:50051\" ca: \"pki/ca.pem\" certificate: \"c.pem\" "
      "private_key: \"c.key\" }\n";
  testing::TempDir dir_;
};

TEST_F(AgentConfigTest, DefaultsAndPathsRelativeToTheFile) {
  auto c = Load("data_dir: \"data\"\n" + kGateway +
                "dicom { listen: \"0.0.0.0:11112\" ae_title: \"CLINIC\" }\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir(), dir_.Join("data"));
  EXPECT_EQ(c->gateway().ca(), dir_.Join("pki/ca.pem"));
  EXPECT_EQ(c->dicom().max_associations(), 8);
  EXPECT_EQ(c->forwarder().parallel(), 4);
  EXPECT_EQ(c->forwarder().initial_backoff_ms(), 500);
  EXPECT_EQ(c->dicom().sop_classes_size(), static_cast<int>(KnownStorageSopClasses().size()));
  EXPECT_EQ(SopClassUid("ecg_12_lead"), "1.2.840.10008.5.1.4.1.1.9.1.1");
  EXPECT_EQ(SopClassUid("1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(SopClassUid("XRAY"), "");
}

TEST_F(AgentConfigTest, MistakesAreNamed) {
  auto syntax = Load("data_dir: \"d\"\n" + kGateway + "dicom { ae_titel: \"X\" }\n");
  EXPECT_THAT(std::string(syntax.status().message()), HasSubstr("line 3"));
  auto semantic = Load("data_dir: \"d\"\n" + kGateway +
                       "dicom { listen: \"0.0.0.0:104\" ae_title: \"A-TITLE-LONGER-THAN-16\" "
                       "sop_classes: \"XRAY\" }\n");
  const std::string why(semantic.status().message());
  EXPECT_THAT(why, HasSubstr("dicom.ae_title"));
  EXPECT_THAT(why, HasSubstr("unknown SOP class 'XRAY'"));
  auto nothing = Load("data_dir: \"d\"\n" + kGateway);
  EXPECT_THAT(std::string(nothing.status().message()), HasSubstr("at least one of"));
  auto tls = Load("data_dir: \"d\"\n" + kGateway +
                  "dicom { listen: \"0.0.0.0:104\" ae_title: \"A\" tls { listen: \"x\" } }\n");
  EXPECT_THAT(std::string(tls.status().message()), HasSubstr("dicom.tls.listen must be HOST:PORT"));
  EXPECT_THAT(std::string(tls.status().message()), HasSubstr("certificate and private_key"));
}

}  // namespace
}  // namespace rdg::agent
