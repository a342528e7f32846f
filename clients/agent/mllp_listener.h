// The edge agent's HL7 v2 listener: MLLP over TCP (0x0B message 0x1C 0x0D), several connections
// at once, one ACK per message on the same connection. A message is checked with the gateway's
// own parser first: one the gateway would refuse is answered AE/AR at once and not stored; a
// good one is answered AA only after the outbox has made it durable.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/agent/object_check.h"
#include "clients/agent/outbox.h"
#include "clients/agent/tcp_server.h"
#include "rdg/v1/agent_config.pb.h"

namespace rdg::agent {

class MllpListener {
 public:
  MllpListener(const rdg::v1::Hl7Listener& config, Outbox& outbox, const ObjectCheck& check);
  ~MllpListener();

  //! Binds the configured HOST:PORT (port 0: a free port, see port()) and starts accepting.
  absl::Status Start();
  int port() const { return port_; }
  //! Stops accepting; connections finish the message they are receiving, then close.
  void Stop();

  int64_t accepted() const { return accepted_; }
  int64_t refused() const { return refused_; }

 private:
  void AcceptLoop();
  void Serve(int fd, std::string peer);
  //! Counts `fd` as open. At max_connections, first ends the connection whose current phase
  //! (silent between messages, or inside a message) began longest ago: a legitimate sender
  //! delivers a message in milliseconds, a trickler or an idle probe does not. False when none
  //! can be ended.
  bool MakeRoom(int fd);
  //! Records that `fd` entered a phase (between messages, or inside one) now.
  void PhaseStarted(int fd);
  void Forget(int fd);
  //! The ACK (framed) for one message, after storing it when it is acceptable.
  std::string Handle(const std::string& message, const std::string& peer);

  const rdg::v1::Hl7Listener config_;
  Outbox& outbox_;
  const ObjectCheck& check_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  ConnectionThreads connections_;
  absl::Mutex connections_mu_;
  //! Open connections: fd -> when their current phase began.
  std::map<int, absl::Time> phase_started_ ABSL_GUARDED_BY(connections_mu_);
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> ack_counter_{0};
};

}  // namespace rdg::agent
