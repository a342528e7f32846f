// UploadSlots: the gateway-wide and per-institution upload limits that gRPC uploads and STOW-RS
// share; a slot is given back when it goes, moved or not.
#include "gateway/ingest/upload_slots.h"

#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdg::ingest {
namespace {

using ::testing::HasSubstr;

TEST(UploadSlotsTest, AnInstitutionGetsItsShareAndNoMore) {
  UploadSlots slots(/*max_total=*/10, /*max_per_institution=*/2);
  auto a = slots.Acquire("clinic-a");
  auto b = slots.Acquire("clinic-a");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = slots.Acquire("clinic-a");
  ASSERT_TRUE(absl::IsUnavailable(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr("max_concurrent_uploads_per_institution"));
  // Another institution is not held up by the first one's share.
  EXPECT_TRUE(slots.Acquire("clinic-b").ok());
  EXPECT_EQ(slots.held_by("clinic-a"), 2);
}

TEST(UploadSlotsTest, TheGatewayLimitHoldsAcrossInstitutions) {
  UploadSlots slots(/*max_total=*/2, /*max_per_institution=*/2);
  auto a = slots.Acquire("clinic-a");
  auto b = slots.Acquire("clinic-b");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = slots.Acquire("clinic-c");
  ASSERT_TRUE(absl::IsUnavailable(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr("busy"));
}

TEST(UploadSlotsTest, ASlotIsGivenBackOnceWhereverItEnds) {
  UploadSlots slots(/*max_total=*/1, /*max_per_institution=*/1);
  {
    auto a = slots.Acquire("clinic-a");
    ASSERT_TRUE(a.ok());
    UploadSlots::Slot moved = *std::move(a);
    UploadSlots::Slot again = std::move(moved);
    EXPECT_FALSE(moved.held());  // NOLINT(bugprone-use-after-move): what a move leaves
    EXPECT_TRUE(again.held());
    EXPECT_EQ(slots.held(), 1);
    again.Release();
    again.Release();  // a second release gives back nothing more
    EXPECT_EQ(slots.held(), 0);
    auto b = slots.Acquire("clinic-a");
    ASSERT_TRUE(b.ok());
    UploadSlots::Slot assigned;
    assigned = *std::move(b);
    EXPECT_EQ(slots.held_by("clinic-a"), 1);
  }
  EXPECT_EQ(slots.held(), 0);
  EXPECT_EQ(slots.held_by("clinic-a"), 0);
  EXPECT_TRUE(slots.Acquire("clinic-a").ok());
}

}  // namespace
}  // namespace rdg::ingest
