// The data dir's safety primitives: the one-process lock, write probes, owner-only modes and ids
// from the CSPRNG.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "storage/base/dir_lock.h"
#include "storage/base/posix_file.h"
#include "storage/base/random.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::storage {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(DirectoryLockTest, ReplicasShareADataDirThatNoneKeepsToItself) {
  testing::TempDir dir;
  auto replica = DirectoryLock::AcquireShared(dir.path());
  auto other = DirectoryLock::AcquireShared(dir.path());
  ASSERT_TRUE(replica.ok()) << replica.status();
  ASSERT_TRUE(other.ok()) << other.status();
  auto alone = DirectoryLock::Acquire(dir.path());  // a gateway on its own SQLite index
  ASSERT_FALSE(alone.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(alone.status()));
  { DirectoryLock gone = *std::move(replica), also = *std::move(other); }
  alone = DirectoryLock::Acquire(dir.path());
  ASSERT_TRUE(alone.ok()) << alone.status();
  auto refused = DirectoryLock::AcquireShared(dir.path());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("only on one PostgreSQL index"), std::string::npos)
      << refused.status();
}

TEST(DirectoryLockTest, ASecondHolderIsRefusedNamingTheFirstPid) {
  testing::TempDir dir;
  auto first = DirectoryLock::Acquire(dir.path());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(ModeOf(dir.Join("rdg.lock")), 0600);
  EXPECT_EQ(testing::ReadFileBytes(dir.Join("rdg.lock")), absl::StrCat(::getpid(), "\n"));
  // flock belongs to the open file: a second open in the same process conflicts like another
  // process would.
  auto second = DirectoryLock::Acquire(dir.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("data dir ", dir.path(), " is in use by pid ", ::getpid(),
                         " (one process per data dir; stop that one first)"));
  { DirectoryLock moved = *std::move(first); }  // released when its holder goes
  EXPECT_TRUE(DirectoryLock::Acquire(dir.path()).ok());
}

TEST(DirectoryLockTest, AMissingDirectoryIsAnError) {
  testing::TempDir dir;
  auto lock = DirectoryLock::Acquire(dir.Join("absent"));
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.status().message().find("cannot open the lock file"), absl::string_view::npos);
}

TEST(PosixFileTest, NewDirectoriesAndFilesAreTheOwnersAlone) {
  testing::TempDir dir;
  const mode_t old_mask = ::umask(0);  // the modes must not depend on the caller's umask
  ASSERT_TRUE(MakeDirectories(dir.Join("a/b")).ok());
  auto file = File::OpenForAppend(dir.Join("a/b/f"), /*create=*/true);
  ::umask(old_mask);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(ModeOf(dir.Join("a")), 0700);
  EXPECT_EQ(ModeOf(dir.Join("a/b")), 0700);
  EXPECT_EQ(ModeOf(dir.Join("a/b/f")), 0600);
}

TEST(PosixFileTest, RestrictToOwnerTakesGroupAndOtherAccess) {
  testing::TempDir dir;
  const std::string path = dir.Write("index", "x");
  ASSERT_EQ(::chmod(path.c_str(), 0664), 0);
  EXPECT_TRUE(*RestrictToOwner(path));
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_FALSE(*RestrictToOwner(path));  // nothing left to take
  EXPECT_TRUE(absl::IsNotFound(RestrictToOwner(dir.Join("absent")).status()));
}

TEST(PosixFileTest, ProbeWritableLeavesNothingBehind) {
  testing::TempDir dir;
  ASSERT_TRUE(ProbeWritable(dir.path()).ok());
  EXPECT_TRUE(ListFiles(dir.path())->empty());
  const absl::Status missing = ProbeWritable(dir.Join("absent"));
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.message().find(dir.Join("absent")), absl::string_view::npos);
}

TEST(PosixFileTest, ProbeHardLinkNamesDirectoriesOnTwoFileSystems) {
  testing::TempDir dir;
  ASSERT_TRUE(MakeDirectories(dir.Join("uploads")).ok());
  ASSERT_TRUE(MakeDirectories(dir.Join("blobs")).ok());
  ASSERT_TRUE(ProbeHardLink(dir.Join("uploads"), dir.Join("blobs")).ok());
  EXPECT_EQ(*ListFiles(dir.Join("uploads")), std::vector<std::string>{});
  EXPECT_EQ(*ListFiles(dir.Join("blobs")), std::vector<std::string>{});
  // /dev/shm (tmpfs) is another file system than the temporary directory on this machine kind.
  struct stat a {
  }, b{};
  if (::stat("/dev/shm", &a) != 0 || ::stat(dir.path().c_str(), &b) != 0 || a.st_dev == b.st_dev) {
    GTEST_SKIP() << "no second file system at /dev/shm";
  }
  const std::string other = absl::StrCat("/dev/shm/rdg-probe-test-", ::getpid());
  ASSERT_TRUE(MakeDirectories(other).ok());
  const absl::Status refused = ProbeHardLink(dir.Join("uploads"), other);
  ::rmdir(other.c_str());
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("one file system"), absl::string_view::npos) << refused;
  EXPECT_EQ(*ListFiles(dir.Join("uploads")), std::vector<std::string>{});
}

TEST(RandomHexTest, HexOfTheAskedLengthAndNeverRepeated) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = RandomHex(8);
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(RandomHex(0), "");
}

}  // namespace
}  // namespace rdg::storage
