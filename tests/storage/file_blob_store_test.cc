#include "storage/file_blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "storage/base/posix_file.h"
#include "storage/staging_area.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::storage {
namespace {

Digest DigestOf(const std::string& s) {
  Sha256 h;
  h.Update(s);
  return h.Finish();
}

std::string ReadAll(const BlobReader& r) {
  std::string out(static_cast<size_t>(r.Size()), '\0');
  size_t n = *r.ReadAt(0, out.data(), out.size());
  out.resize(n);
  return out;
}

TEST(FileBlobStoreTest, AdoptLinksFileUnderItsDigest) {
  testing::TempDir dir;
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  const std::string bytes = "DICM-ish payload";
  const std::string staged = dir.Write("upload.part", bytes);
  ASSERT_TRUE(store->Adopt(staged, DigestOf(bytes)).ok());
  // The staged name stays until its owner removes it (a failed index commit keeps the bytes).
  EXPECT_TRUE(std::filesystem::exists(staged));
  ASSERT_TRUE(RemoveFile(staged).ok());
  EXPECT_TRUE(store->Exists(DigestOf(bytes)));
  auto reader = store->Open(DigestOf(bytes));
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(ReadAll(**reader), bytes);
  EXPECT_EQ(testing::ReadFileBytes(store->PathOf(DigestOf(bytes))), bytes);
}

TEST(FileBlobStoreTest, AdoptOfExistingContentLeavesTheStoreAsItIs) {
  testing::TempDir dir;
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  ASSERT_TRUE(store->Adopt(dir.Write("a", "same"), DigestOf("same")).ok());
  const std::string second = dir.Write("b", "same");
  ASSERT_TRUE(store->Adopt(second, DigestOf("same")).ok());
  EXPECT_TRUE(std::filesystem::exists(second));  // the caller's to remove
  EXPECT_EQ(testing::ReadFileBytes(store->PathOf(DigestOf("same"))), "same");
}

TEST(FileBlobStoreTest, AdoptAllStoresABatchAndAFailureCostsOnlyItsFile) {
  testing::TempDir dir;
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  ASSERT_TRUE(store->Adopt(dir.Write("old", "stored before"), DigestOf("stored before")).ok());
  const std::vector<BlobStore::Adoption> batch = {
      {dir.Write("a.part", "first"), DigestOf("first")},
      {dir.Join("gone.part"), DigestOf("never staged")},  // its file is missing
      {dir.Write("b.part", "stored before"), DigestOf("stored before")},
      {dir.Write("c.part", "second"), DigestOf("second")},
  };
  const std::vector<absl::Status> results = store->AdoptAll(batch);
  ASSERT_EQ(results.size(), batch.size());
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_TRUE(absl::IsNotFound(results[1])) << results[1];
  EXPECT_TRUE(results[2].ok()) << results[2];
  EXPECT_TRUE(results[3].ok()) << results[3];
  EXPECT_EQ(testing::ReadFileBytes(store->PathOf(DigestOf("first"))), "first");
  EXPECT_EQ(testing::ReadFileBytes(store->PathOf(DigestOf("second"))), "second");
  EXPECT_FALSE(store->Exists(DigestOf("never staged")));
  EXPECT_TRUE(std::filesystem::exists(dir.Join("a.part")));  // the caller's to remove
  EXPECT_TRUE(store->AdoptAll({}).empty());
}

TEST(FileBlobStoreTest, ReadRangeAndRemove) {
  testing::TempDir dir;
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  ASSERT_TRUE(store->Adopt(dir.Write("a", "0123456789"), DigestOf("0123456789")).ok());
  auto reader = *store->Open(DigestOf("0123456789"));
  char buf[4];
  ASSERT_EQ(*reader->ReadAt(3, buf, 4), 4u);
  EXPECT_EQ(std::string(buf, 4), "3456");
  EXPECT_EQ(*reader->ReadAt(10, buf, 4), 0u);
  ASSERT_TRUE(store->Remove(DigestOf("0123456789")).ok());
  EXPECT_FALSE(store->Exists(DigestOf("0123456789")));
  EXPECT_TRUE(absl::IsNotFound(store->Open(DigestOf("0123456789")).status()));
}

TEST(FileBlobStoreTest, AHeldOrReferencedBlobIsNotRemoved) {
  testing::TempDir dir;
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  const Digest d = DigestOf("bytes an upload is committing");
  ASSERT_TRUE(store->Adopt(dir.Write("a", "bytes an upload is committing"), d).ok());
  const auto unreferenced = []() -> absl::StatusOr<bool> { return false; };
  {
    // An upload (here, or on another gateway: the lock is an open file description's) holds it.
    auto hold = store->HoldBlob(d);
    ASSERT_TRUE(hold.ok()) << hold.status();
    EXPECT_EQ(store->RemoveUnreferenced(d, unreferenced).value(), false);
    EXPECT_TRUE(store->Exists(d));
  }
  EXPECT_EQ(store->RemoveUnreferenced(d, [] { return absl::StatusOr<bool>(true); }).value(), false);
  EXPECT_TRUE(store->Exists(d));
  EXPECT_FALSE(
      store
          ->RemoveUnreferenced(d, [] { return absl::StatusOr<bool>(absl::UnavailableError("db")); })
          .ok());
  EXPECT_TRUE(store->Exists(d));
  EXPECT_EQ(store->RemoveUnreferenced(d, unreferenced).value(), true);
  EXPECT_FALSE(store->Exists(d));
  EXPECT_EQ(store->RemoveUnreferenced(d, unreferenced).value(), false);  // nothing to remove
  EXPECT_TRUE(absl::IsNotFound(store->HoldBlob(d).status()));
}

TEST(FileBlobStoreTest, TheUploadsOwnLockedPartFileNeitherBlocksNorKeepsItsBlob) {
  // The adopted blob is a second name of the part file its upload still holds locked; two
  // uploads of the same bytes in one batch hold the same blob.
  testing::TempDir dir;
  auto staging = *StagingArea::Create(dir.Join("uploads"));
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  auto part = staging.OpenForAppend("up-1", true);
  ASSERT_TRUE(part.ok()) << part.status();
  ASSERT_TRUE(part->Append("refused later").ok());
  const Digest d = DigestOf("refused later");
  ASSERT_TRUE(store->AdoptAll({{dir.Join("uploads/up-1.part"), d}})[0].ok());
  {
    auto first = store->HoldBlob(d);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = store->HoldBlob(d);
    ASSERT_TRUE(second.ok()) << second.status();
  }
  // Its object refused, the upload drops the blob while its part file is still locked.
  EXPECT_EQ(store->RemoveUnreferenced(d, [] { return absl::StatusOr<bool>(false); }).value(), true);
  EXPECT_FALSE(store->Exists(d));
}

//! Whether a lock request waits on some file (/proc/locks lists waiters with "->").
bool SomeLockIsAwaited() {
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    if (line.find("->") != std::string::npos) return true;
  }
  return false;
}

TEST(FileBlobStoreTest, AHoldAskedDuringARemovalWaitsAndFindsTheBlobGone) {
  testing::TempDir dir;
  auto store = *FileBlobStore::Create(dir.Join("blobs"));
  const Digest d = DigestOf("refused object");
  ASSERT_TRUE(store->Adopt(dir.Write("a", "refused object"), d).ok());
  std::optional<absl::Status> held;
  std::thread upload;
  auto removed = store->RemoveUnreferenced(d, [&]() -> absl::StatusOr<bool> {
    // While the removal holds the blob's byte of `holds`, another upload of the same bytes asks
    // for a hold, and waits. (Another process's waiting lock may end this wait early: then the
    // hold is asked after the removal, and the answer must be the same.)
    upload = std::thread([&] { held = store->HoldBlob(d).status(); });
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!SomeLockIsAwaited() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    return false;
  });
  upload.join();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(*removed);
  ASSERT_TRUE(held.has_value());
  // It must adopt its own copy again: the file it waited on has no name any more.
  EXPECT_TRUE(absl::IsNotFound(*held)) << *held;
}

TEST(StagingAreaTest, APartFileBeingWrittenIsHeldAgainstOtherGateways) {
  // Two open file descriptions conflict as two processes on one shared staging dir would.
  testing::TempDir dir;
  auto staging = *StagingArea::Create(dir.Join("uploads"));
  auto writer = staging.OpenForAppend("up-1", true);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE(writer->Append("abc").ok());
  EXPECT_TRUE(absl::IsAborted(staging.OpenForAppend("up-1", true).status()));
  EXPECT_FALSE(*staging.RemoveIfFree("up-1")) << "an expiry or orphan sweep must leave it";
  EXPECT_TRUE(staging.IsHeld("up-1"));
  {  // closing another descriptor of the file in this process keeps the hold (unlike POSIX
     // record locks, which NFS would otherwise give)
    auto reader = File::OpenForRead(dir.Join("uploads/up-1.part"));
    ASSERT_TRUE(reader.ok()) << reader.status();
  }
  EXPECT_TRUE(staging.IsHeld("up-1"));
  EXPECT_EQ(*staging.StagedBytes("up-1"), 3);
  *writer = File();  // the stream ends: its hold with it
  EXPECT_FALSE(staging.IsHeld("up-1"));
  auto resumed = staging.OpenForAppend("up-1", false);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(*resumed->Size(), 3);
  *resumed = File();
  EXPECT_TRUE(*staging.RemoveIfFree("up-1"));
  EXPECT_EQ(*staging.StagedBytes("up-1"), 0);
  EXPECT_TRUE(*staging.RemoveIfFree("up-never")) << "nothing to remove";
}

TEST(StagingAreaTest, TracksPartFilesAndRemovesStrays) {
  testing::TempDir dir;
  auto staging = *StagingArea::Create(dir.Join("uploads"));
  {
    auto f = *staging.OpenForAppend("up-1", true);
    ASSERT_TRUE(f.Append("abc").ok());
  }
  EXPECT_EQ(*staging.StagedBytes("up-1"), 3);
  EXPECT_EQ(*staging.StagedBytes("up-2"), 0);
  testing::TempDir unused;
  std::ofstream(dir.Join("uploads/leftover.tmp")) << "x";
  // Another replica's start-up probe and an NFS name of a removed file still open stay.
  std::ofstream(dir.Join("uploads/.rdg-write-probe-1-0a1b")) << "\n";
  std::ofstream(dir.Join("uploads/.nfs000000000123abcd00000001")) << "x";
  EXPECT_EQ(*staging.RemoveStrayFiles(), 1);
  EXPECT_TRUE(std::filesystem::exists(dir.Join("uploads/.nfs000000000123abcd00000001")));
  EXPECT_EQ(*staging.ListSessions(), std::vector<std::string>{"up-1"});
  ASSERT_TRUE(staging.Remove("up-1").ok());
  EXPECT_TRUE(staging.ListSessions()->empty());
}

}  // namespace
}  // namespace rdg::storage
