#include "gateway/ingest/index_committer.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <thread>

#include "storage/sqlite_index_store.h"
#include "tests/mocks/mock_blob_store.h"
#include "tests/mocks/mock_index_store.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::ingest {
namespace {

using ::testing::_;
using ::testing::Return;

storage::NewObject Object(int i) {
  storage::NewObject n;
  n.exam.origin_institution = n.object.origin_institution = "c1";
  n.exam.study_instance_uid = "1.2." + std::to_string(i % 7);
  n.object.sop_instance_uid = "1.2.3." + std::to_string(i);
  n.object.sha256_hex = "h" + std::to_string(i);
  n.object.size = 10;
  return n;
}

TEST(IndexCommitterTest, ConcurrentCommitsShareTransactions) {
  testing::TempDir dir;
  auto index = *storage::SqliteIndexStore::Open(dir.Join("i.sqlite"));
  IndexCommitter committer(*index, 256);
  constexpr int kThreads = 16, kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) ok += committer.Commit(Object(t * kPerThread + i)).ok();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kThreads * kPerThread);
  // Every object is visible, and batching really happened (far fewer transactions than objects).
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    ASSERT_TRUE(index->FindObject("c1", "1.2.3." + std::to_string(i))->has_value());
  }
  EXPECT_LT(committer.batches(), kThreads * kPerThread);
  EXPECT_GT(committer.batches(), 0);
}

TEST(IndexCommitterTest, FilesAreAdoptedBeforeTheRowsAndAFailedFileCommitsNothingOfItsObject) {
  testing::TempDir dir;
  auto index = *storage::SqliteIndexStore::Open(dir.Join("i.sqlite"));
  ::testing::NiceMock<storage::MockBlobStore> blobs;
  EXPECT_CALL(blobs, Adopt(_, _)).WillRepeatedly([&](const std::string& path, const auto&) {
    // The object's row is not written before its file is adopted.
    EXPECT_FALSE(index->FindObject("c1", path == "fine.part" ? "1.2.3.1" : "1.2.3.2")->has_value());
    return path == "broken.part" ? absl::InternalError("fsync: Input/output error")
                                 : absl::OkStatus();
  });
  IndexCommitter committer(*index, 8, &blobs);
  auto ok = committer.Commit(Object(1), storage::BlobStore::Adoption{"fine.part", {}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto failed = committer.Commit(Object(2), storage::BlobStore::Adoption{"broken.part", {}});
  EXPECT_TRUE(absl::IsInternal(failed.status())) << failed.status();
  EXPECT_TRUE(index->FindObject("c1", "1.2.3.1")->has_value());
  EXPECT_FALSE(index->FindObject("c1", "1.2.3.2")->has_value());
  // Without a blob store a file cannot be taken.
  IndexCommitter rows_only(*index, 8);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      rows_only.Commit(Object(3), storage::BlobStore::Adoption{"fine.part", {}}).status()));
}

//! A hold that runs `at_release` when it ends.
struct WatchedHold : storage::BlobStore::Hold {
  std::function<void()> at_release;
  ~WatchedHold() override { at_release(); }
};

//! HoldBlob's answer for a blob removed meanwhile.
absl::StatusOr<std::unique_ptr<storage::BlobStore::Hold>> Removed(const storage::Digest&) {
  return absl::NotFoundError("removed");
}

TEST(IndexCommitterTest, ABlobRemovedBeforeItsRowIsAdoptedAgainAndHeldUntilTheCommit) {
  testing::TempDir dir;
  auto index = *storage::SqliteIndexStore::Open(dir.Join("i.sqlite"));
  ::testing::NiceMock<storage::MockBlobStore> blobs;
  // Between the adoption and the hold, another gateway removed the blob (the same bytes, stored
  // before for an object it then refused): the staged file is adopted again, then held.
  EXPECT_CALL(blobs, Adopt("fine.part", _)).Times(2).WillRepeatedly(Return(absl::OkStatus()));
  bool row_when_released = false;
  EXPECT_CALL(blobs, HoldBlob(_)).WillOnce(Removed).WillOnce([&](const storage::Digest&) {
    auto hold = std::make_unique<WatchedHold>();
    hold->at_release = [&] { row_when_released = index->FindObject("c1", "1.2.3.1")->has_value(); };
    return absl::StatusOr<std::unique_ptr<storage::BlobStore::Hold>>(std::move(hold));
  });
  IndexCommitter committer(*index, 8, &blobs);
  auto ok = committer.Commit(Object(1), storage::BlobStore::Adoption{"fine.part", {}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(row_when_released) << "the hold ended before the row naming the blob committed";

  // Removed again and again: the upload is told to retry, and no row names a missing blob.
  EXPECT_CALL(blobs, Adopt("again.part", _)).WillRepeatedly(Return(absl::OkStatus()));
  EXPECT_CALL(blobs, HoldBlob(_)).WillRepeatedly(Removed);
  auto refused = committer.Commit(Object(2), storage::BlobStore::Adoption{"again.part", {}});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_FALSE(index->FindObject("c1", "1.2.3.2")->has_value());
}

TEST(IndexCommitterTest, TransactionFailureReachesEveryCaller) {
  storage::MockIndexStore index;
  EXPECT_CALL(index, CommitObjects(_)).WillRepeatedly([](absl::Span<const storage::NewObject> b) {
    return std::vector<absl::StatusOr<storage::CommitOutcome>>(
        b.size(), absl::InternalError("disk I/O error"));
  });
  IndexCommitter committer(index, 8);
  auto r = committer.Commit(Object(1));
  EXPECT_TRUE(absl::IsInternal(r.status()));
}

}  // namespace
}  // namespace rdg::ingest
