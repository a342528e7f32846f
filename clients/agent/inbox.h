// The edge agent's inbox: watches the gateway's delivery stream for the clinic's reports and
// writes each one to INBOX/<exam>/<report>-v<version>/ (report.txt, the signature, signer.pem and
// VERIFICATION.txt with the result of checking it against the platform CA), so clinic staff see
// reports without a command. Critical results also get a CRITICAL.txt with the acknowledgement
// deadline. The stream's cursor is kept in the outbox database: a restart misses nothing and
// writes nothing twice.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "clients/agent/outbox.h"
#include "rdg/v1/agent_config.pb.h"
#include "rdg/v1/delivery.grpc.pb.h"

namespace rdg::agent {

class Inbox {
 public:
  //! `zone`: the time zone of times written for people (CRITICAL.txt); `institution`: the
  //! clinic's own (its certificate's O), whose exams every report must be for.
  Inbox(const rdg::v1::Inbox& config, std::string ca_path, std::string institution,
        std::shared_ptr<grpc::Channel> channel, Outbox& state, absl::TimeZone zone);
  ~Inbox();

  void Start();
  void Stop();
  int64_t written() const { return written_; }

 private:
  void Run();
  void Write(const rdg::v1::DeliveredReport& d);

  const rdg::v1::Inbox config_;
  const std::string ca_path_;
  const std::string institution_;
  std::unique_ptr<rdg::v1::DeliveryService::Stub> stub_;
  Outbox& state_;
  const absl::TimeZone zone_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  grpc::ClientContext* watch_ = nullptr;  //!< guarded by mu_: the stream to cancel on Stop()
  std::thread thread_;
  std::atomic<int64_t> written_{0};
};

}  // namespace rdg::agent
