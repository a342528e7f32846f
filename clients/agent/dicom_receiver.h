// The edge agent's DICOM C-STORE SCP (DCMTK dcmnet, one thread per association): accepts the
// configured storage SOP classes in their common transfer syntaxes and C-ECHO, checks the called
// and calling AE titles, streams each received dataset straight to a file (bounded memory, the
// bytes exactly as sent) and answers C-STORE success only after the outbox has made it durable.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "clients/agent/outbox.h"
#include "rdg/v1/agent_config.pb.h"

namespace rdg::agent {

class DicomReceiver {
 public:
  DicomReceiver(const rdg::v1::DicomListener& config, Outbox& outbox);
  ~DicomReceiver();

  //! Starts listening on the configured HOST:PORT (port 0: a free port, see port()).
  absl::Status Start();
  int port() const { return port_; }
  //! Stops accepting associations, lets the running ones finish (up to `grace`), and returns.
  void Stop();

  //! Objects received and made durable since start.
  int64_t received() const { return received_; }

 private:
  class Pool;
  const rdg::v1::DicomListener config_;
  Outbox& outbox_;
  std::unique_ptr<Pool> pool_;
  std::thread listener_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<int64_t> received_{0};
};

}  // namespace rdg::agent
