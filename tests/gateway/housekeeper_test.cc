// Housekeeping on the injected clock: what runs when, in which order, and a thread that stops.
#include "gateway/common/housekeeper.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "tests/mocks/fake_clock.h"

namespace rdg {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(HousekeeperTest, JobsRunWhenTheirPeriodHasPassedOnTheClock) {
  FakeClock clock;
  Housekeeper h(clock, absl::Seconds(10));
  int leases = 0, sessions = 0;
  h.Add("claim-leases", absl::Seconds(10), [&] { ++leases; });
  h.Add("upload-sessions", absl::Hours(1), [&] { ++sessions; });
  EXPECT_THAT(h.RunDue(), IsEmpty());  // nothing is due at once
  clock.Advance(absl::Seconds(9));
  EXPECT_THAT(h.RunDue(), IsEmpty());
  clock.Advance(absl::Seconds(1));
  EXPECT_THAT(h.RunDue(), ElementsAre("claim-leases"));
  EXPECT_THAT(h.RunDue(), IsEmpty());  // not twice for one period
  clock.Advance(absl::Hours(1));
  EXPECT_THAT(h.RunDue(), ElementsAre("claim-leases", "upload-sessions"));
  EXPECT_EQ(leases, 2);
  EXPECT_EQ(sessions, 1);
}

TEST(HousekeeperTest, LeaderOnlyJobsWaitWhileAnotherGatewayLeads) {
  FakeClock clock;
  bool leads = false;
  int asked = 0;
  Housekeeper h(clock, absl::Seconds(10), [&] {
    ++asked;
    return leads;
  });
  h.Add("storage", absl::Seconds(10), [] {});
  h.Add(
      "escalation", absl::Seconds(10), [] {}, Housekeeper::Scope::kLeaderOnly);
  h.Add(
      "claim-leases", absl::Seconds(10), [] {}, Housekeeper::Scope::kLeaderOnly);
  clock.Advance(absl::Seconds(10));
  EXPECT_THAT(h.RunDue(), ElementsAre("storage"));
  EXPECT_EQ(asked, 1) << "asked once a round";
  clock.Advance(absl::Seconds(3));
  leads = true;  // the leader died: this gateway took over
  EXPECT_THAT(h.RunDue(), ElementsAre("escalation", "claim-leases")) << "due jobs run at once";
  EXPECT_THAT(h.RunDue(), IsEmpty());
  leads = false;  // lost the database connection: no longer leads
  clock.Advance(absl::Seconds(10));
  EXPECT_THAT(h.RunDue(), ElementsAre("storage"));
}

TEST(HousekeeperTest, AClockMovedFarAheadRunsAJobOnceNotOncePerMissedPeriod) {
  FakeClock clock;
  Housekeeper h(clock, absl::Seconds(10));
  int runs = 0;
  h.Add("sla-breaches", absl::Seconds(10), [&] { ++runs; });
  clock.Advance(absl::Hours(24));  // a simulation jumps a day
  EXPECT_THAT(h.RunDue(), ElementsAre("sla-breaches"));
  EXPECT_THAT(h.RunDue(), IsEmpty());
  EXPECT_EQ(runs, 1);
}

class SettableClock final : public Clock {
 public:
  absl::Time Now() const override { return now.load(); }
  std::atomic<absl::Time> now{absl::FromUnixSeconds(1'800'000'000)};
};

TEST(HousekeeperTest, AClockSetBackDoesNotStallTheJobs) {
  SettableClock clock;
  Housekeeper h(clock, absl::Seconds(10));
  h.Add("escalation", absl::Seconds(10), [] {});
  clock.now = clock.now.load() + absl::Minutes(30);
  EXPECT_THAT(h.RunDue(), ElementsAre("escalation"));
  clock.now = clock.now.load() - absl::Minutes(30);  // a test resets its clock offset
  EXPECT_THAT(h.RunDue(), ElementsAre("escalation"));
  clock.now = clock.now.load() + absl::Seconds(10);
  EXPECT_THAT(h.RunDue(), ElementsAre("escalation"));
}

TEST(HousekeeperTest, TheThreadRunsDueJobsAndStopsWhenAsked) {
  FakeClock clock;  // never advances: a job of period zero is due at every tick
  Housekeeper h(clock, absl::Milliseconds(1));
  absl::Notification ran_twice;
  std::atomic<int> runs{0};
  h.Add("metrics", absl::ZeroDuration(), [&] {
    if (++runs == 2) ran_twice.Notify();
  });
  h.Start();
  EXPECT_TRUE(ran_twice.WaitForNotificationWithTimeout(absl::Seconds(30)));
  h.Stop();
  const int after_stop = runs.load();
  h.Stop();  // idempotent
  EXPECT_EQ(runs.load(), after_stop);
}

TEST(HousekeeperTest, StopWakesAThreadWaitingForALongTick) {
  FakeClock clock;
  Housekeeper h(clock, absl::Hours(1));
  h.Add("upload-sessions", absl::Hours(1), [] { FAIL() << "not due"; });
  h.Start();
  const absl::Time start = absl::Now();
  h.Stop();
  EXPECT_LT(absl::Now() - start, absl::Minutes(1));  // not the tick's hour
}

}  // namespace
}  // namespace rdg
