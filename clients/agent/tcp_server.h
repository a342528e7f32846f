// What the agent's two receivers (DICOM, HL7 MLLP) share: a listening socket on HOST:PORT, and
// a set of per-connection threads that are joined as they finish.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace rdg::agent {

//! A listening TCP socket on HOST:PORT ("[::1]:0" style for IPv6; port 0 picks a free port,
//! written to `*port`). `what` names the setting in error messages ("dicom.listen").
absl::StatusOr<int> ListenTcp(const std::string& host_port, const std::string& what, int* port);

//! Threads of open connections. Finished ones are joined by Reap(), all of them by JoinAll().
class ConnectionThreads {
 public:
  ~ConnectionThreads() { JoinAll(); }
  void Spawn(std::function<void()> serve);
  //! Joins the threads whose connection ended (a long-running agent does not pile them up).
  void Reap();
  void JoinAll();

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void Join(bool all);
  std::mutex mu_;
  std::vector<Entry> threads_;  //!< guarded by mu_
};

}  // namespace rdg::agent
