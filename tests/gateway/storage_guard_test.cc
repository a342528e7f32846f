// StorageGuard: the disk reserve both ways, an index that stops being writable, and a WAL that
// vanishes (reported until restart).
#include "gateway/common/storage_guard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"

namespace rdg {
namespace {

constexpr int64_t kMiB = 1 << 20;

class StorageGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    index_path_ = dir_.Join("index.sqlite");
    store_ = *storage::SqliteIndexStore::Open(index_path_);  // creates the WAL
  }
  std::unique_ptr<StorageGuard> Guard(int64_t reserve) {
    auto guard = StorageGuard::Start({dir_.path(), index_path_, reserve, {}},
                                     [this](const std::string& path) -> absl::StatusOr<int64_t> {
                                       EXPECT_EQ(path, dir_.path());
                                       return free_.load();
                                     });
    EXPECT_TRUE(guard.ok()) << guard.status();
    return guard.ok() ? *std::move(guard) : nullptr;
  }

  testing::TempDir dir_;
  std::string index_path_;
  std::unique_ptr<storage::SqliteIndexStore> store_;
  std::atomic<int64_t> free_{10 * 1024 * kMiB};
};

TEST_F(StorageGuardTest, BelowTheReserveNothingIsAdmittedAndAboveItAgainIs) {
  auto guard = Guard(1024 * kMiB);
  EXPECT_TRUE(guard->Check().ok());
  EXPECT_TRUE(guard->AdmitUpload().ok());
  free_ = 1000 * kMiB;
  const absl::Status low = guard->AdmitUpload();  // seen without waiting for a Check()
  EXPECT_EQ(low.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(low.message(),
            "disk below its reserve: 1000 MiB free on the data dir's filesystem, disk_reserve_mb "
            "is 1024 MiB");
  EXPECT_EQ(guard->Check(), low);
  free_ = 2048 * kMiB;
  EXPECT_TRUE(guard->Check().ok());
  EXPECT_TRUE(guard->AdmitUpload().ok());
}

TEST_F(StorageGuardTest, AZeroReserveIsOff) {
  auto guard = Guard(0);
  free_ = 0;
  EXPECT_TRUE(guard->Check().ok());
  EXPECT_TRUE(guard->AdmitUpload().ok());
}

TEST_F(StorageGuardTest, AVanishedWalStaysReportedEvenWhenAFileOfItsNameReturns) {
  auto guard = Guard(0);
  ASSERT_TRUE(guard->Check().ok());
  ASSERT_EQ(std::remove((index_path_ + "-wal").c_str()), 0);
  const absl::Status lost = guard->Check();
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(lost.message().find("vanished or was replaced"), absl::string_view::npos) << lost;
  const absl::Status told = guard->AdmitUpload();  // clients hear no paths
  EXPECT_EQ(told.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(told.message(),
            "the gateway's storage is not safe to write now (its operators see why on /readyz); "
            "retry later");
  dir_.Write("index.sqlite-wal", "");  // a new file of the same name is not the log SQLite writes
  EXPECT_EQ(guard->Check(), lost);
}

TEST_F(StorageGuardTest, StartNeedsTheWal) {
  store_.reset();  // the last connection closing removes the WAL
  auto guard = StorageGuard::Start({dir_.path(), index_path_, 0, {}});
  ASSERT_FALSE(guard.ok());
  EXPECT_EQ(guard.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StorageGuardTest, TheRealFreeSpaceIsThatOfTheDataDirsFilesystem) {
  auto free = StorageGuard::StatvfsFreeSpace(dir_.path());
  ASSERT_TRUE(free.ok()) << free.status();
  EXPECT_GT(*free, 0);
  EXPECT_EQ(StorageGuard::StatvfsFreeSpace(dir_.Join("absent")).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(StorageGuardTest, ADatabaseIndexIsAskedAtEveryCheckAndComesBack) {
  std::atomic<bool> reachable{false};
  auto guard = StorageGuard::Start(
      {dir_.path(), "", 0,
       [&reachable]() -> absl::Status {
         return reachable ? absl::OkStatus()
                          : absl::UnavailableError("postgres: connection refused");
       }},
      [this](const std::string&) -> absl::StatusOr<int64_t> { return free_.load(); });
  ASSERT_TRUE(guard.ok()) << guard.status();  // no WAL to watch
  EXPECT_EQ((*guard)->Check().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*guard)->AdmitUpload().code(), absl::StatusCode::kUnavailable);
  reachable = true;  // the database is back: so is the gateway, without a restart
  EXPECT_TRUE((*guard)->Check().ok());
  EXPECT_TRUE((*guard)->AdmitUpload().ok());
}

}  // namespace
}  // namespace rdg
