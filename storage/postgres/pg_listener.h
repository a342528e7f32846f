// Listener: a thread on a connection of its own that LISTENs on one channel of the PostgreSQL
// index and hands every notification's payload to `heard`. Notifications sent before it listens
// (at the start, and while its connection was lost) cannot be known: each time it starts
// listening, `heard("")` says "anything may have happened until now". Used to wake the report
// watches of every gateway when a report is signed through any of them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace rdg::storage::pg {

class Listener {
 public:
  //! Starts listening at once (the first connection is made on the thread: a database that is
  //! down is retried every second).
  Listener(std::string conninfo, std::string channel,
           std::function<void(const std::string& payload)> heard);
  ~Listener();  //!< stops the thread
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

 private:
  void Loop();
  bool Stopping(absl::Duration wait) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string conninfo_;
  const std::string channel_;
  const std::function<void(const std::string&)> heard_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace rdg::storage::pg
