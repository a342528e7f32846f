// The worker pool: every task runs, on several threads at once, and the destructor drains.
#include "storage/base/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace rdg {
namespace {

TEST(WorkerPoolTest, TasksRunConcurrentlyOnThePoolsThreads) {
  absl::Notification first_running, second_ran;
  std::atomic<bool> overlapped{false};
  {
    WorkerPool pool(2);
    // The first task waits for the second: on one thread it would time out.
    pool.Post([&] {
      first_running.Notify();
      overlapped = second_ran.WaitForNotificationWithTimeout(absl::Seconds(30));
    });
    pool.Post([&] {
      first_running.WaitForNotification();
      second_ran.Notify();
    });
  }  // joins both
  EXPECT_TRUE(overlapped.load());
}

TEST(WorkerPoolTest, OneThreadRunsTasksInTheOrderPosted) {
  std::vector<int> order;
  absl::Mutex mu;
  {
    WorkerPool pool(1);
    for (int i = 0; i < 100; ++i) {
      pool.Post([&, i] {
        absl::MutexLock lock(&mu);
        order.push_back(i);
      });
    }
  }  // drained here
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

TEST(WorkerPoolTest, TheDestructorRunsEveryQueuedTaskBeforeReturning) {
  std::atomic<int> ran{0};
  absl::Notification release;
  {
    WorkerPool pool(2);
    // Both threads are held while 1000 tasks queue up behind them.
    for (int i = 0; i < 2; ++i) pool.Post([&] { release.WaitForNotification(); });
    for (int i = 0; i < 1000; ++i) pool.Post([&] { ++ran; });
    release.Notify();
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(WorkerPoolTest, ATaskMayPostAnother) {
  std::atomic<int> ran{0};
  absl::Notification done;
  WorkerPool pool(2);
  pool.Post([&] {
    ++ran;
    pool.Post([&] {
      ++ran;
      done.Notify();
    });
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace rdg
