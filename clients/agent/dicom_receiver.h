// The edge agent's DICOM C-STORE SCP (DCMTK dcmnet, one thread per association): accepts the
// configured storage SOP classes in their common transfer syntaxes and C-ECHO, checks the called
// and calling AE titles, streams each received dataset straight to a file (bounded memory, the
// bytes exactly as sent), checks it as the gateway will (object_check.h) and answers C-STORE
// success only for an object that passed and that the outbox has made durable. Refusals carry
// the DICOM status that fits and an Error Comment with the reason: C000 (cannot understand:
// not DICOM, malformed, an invalid ECG, a file that crashed the parser), A900 (the data set is
// not the SOP class or instance the request named), A700 (out of resources: larger than the
// gateway accepts, the agent's disk, the checks busy). With dicom.tls, a second listener takes
// DICOM over TLS (tls_tunnel.h) and serves it the same way.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "clients/agent/object_check.h"
#include "clients/agent/outbox.h"
#include "rdg/v1/agent_config.pb.h"

namespace rdg::agent {

class TlsServerContext;

class DicomReceiver {
 public:
  DicomReceiver(const rdg::v1::DicomListener& config, Outbox& outbox, const ObjectCheck& check);
  ~DicomReceiver();

  //! Starts listening on the configured HOST:PORT (port 0: a free port, see port()).
  absl::Status Start();
  int port() const { return port_; }
  //! The DICOM TLS listener's port (dicom.tls.listen), 0 without one.
  int tls_port() const { return tls_port_; }
  //! Stops accepting associations, lets the running ones finish (up to `grace`), and returns.
  void Stop();

  //! Objects received and made durable since start.
  int64_t received() const { return received_; }
  //! Objects refused to the device since start.
  int64_t refused() const { return refused_; }

 private:
  class Pool;
  const rdg::v1::DicomListener config_;
  Outbox& outbox_;
  const ObjectCheck& check_;
  std::unique_ptr<Pool> pool_;
  std::thread listener_;
  std::thread tls_listener_;
  std::unique_ptr<TlsServerContext> tls_context_;
  int port_ = 0;
  int listen_fd_ = -1;
  int tls_port_ = 0;
  int tls_listen_fd_ = -1;
  std::atomic<int64_t> received_{0};
  std::atomic<int64_t> refused_{0};
};

}  // namespace rdg::agent
