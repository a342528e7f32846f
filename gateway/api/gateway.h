// The running gateway, and the composition root of the server: Start builds the named
// components below in order — the configuration's policy, the stores, ingest, the reading and
// report desks, the gRPC services and server, monitoring, housekeeping — wiring each with what
// it uses, and owns them. main.cc only parses flags, builds this and waits for a signal.
#pragma once

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/common/clock.h"
#include "rdg/v1/config.pb.h"

namespace rdg::api {

class Gateway {
 public:
  //! Opens storage, recovers unfinished uploads, and starts serving (mTLS) on config.listen.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const rdg::v1::GatewayConfig& config,
                                                        const Clock& clock);
  ~Gateway();

  //! The bound port (useful with port 0).
  int port() const;
  //! The monitoring port (0 when monitoring is disabled).
  int monitoring_port() const;
  //! The DICOMweb port (0 when DICOMweb is off).
  int dicomweb_port() const;
  //! Reads tls.crl_file again now (SIGHUP); on error the previous list stays in force.
  absl::Status ReloadRevocations();
  //! Stops accepting calls, lets in-flight ones finish for up to `grace` (then cancels them;
  //! interrupted uploads stay resumable), and drains the worker pool.
  void Shutdown(absl::Duration grace);

  struct Components;  //!< gateway.cc

 private:
  explicit Gateway(std::unique_ptr<Components> parts);

  std::unique_ptr<Components> parts_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rdg::api
