// rdg.v1.DeliveryService: the origin clinic's report feed (server-streaming watch resumable from a
// cursor, and polling), acknowledgement, and the latest report of one exam.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "gateway/api/call_support.h"
#include "gateway/common/clock.h"
#include "gateway/config/institution_directory.h"
#include "gateway/signing/receipt_signer.h"
#include "gateway/worklist/report_desk.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "storage/base/worker_pool.h"

namespace rdg::api {

class WatchReactor;

class DeliveryServiceImpl final : public rdg::v1::DeliveryService::CallbackService {
 public:
  //! `platform_name`: printed at the top of reports (GatewayConfig.platform_name); `receipts`
  //! signs the receipt each delivered report carries, dated by `clock`.
  DeliveryServiceImpl(worklist::ReportDesk& reports, const ServiceContext& context,
                      std::string platform_name, const signing::ReceiptSigner& receipts,
                      const Clock& clock)
      : reports_(reports),
        pool_(context.pool),
        authenticator_(context.authenticator),
        directory_(context.directory),
        platform_name_(std::move(platform_name)),
        receipts_(receipts),
        clock_(clock) {}

  grpc::ServerWriteReactor<rdg::v1::DeliveredReport>* WatchReports(
      grpc::CallbackServerContext* ctx, const rdg::v1::WatchReportsRequest* request) override;
  grpc::ServerUnaryReactor* PollReports(grpc::CallbackServerContext* ctx,
                                        const rdg::v1::WatchReportsRequest* request,
                                        rdg::v1::PollReportsResponse* response) override;
  grpc::ServerUnaryReactor* AcknowledgeReport(grpc::CallbackServerContext* ctx,
                                              const rdg::v1::AcknowledgeRequest* request,
                                              rdg::v1::AcknowledgeResponse* response) override;
  grpc::ServerUnaryReactor* GetReport(grpc::CallbackServerContext* ctx,
                                      const rdg::v1::GetReportRequest* request,
                                      rdg::v1::DeliveredReport* response) override;

  //! Ends every open watch, and each one started from now on, with UNAVAILABLE ("the gateway is
  //! shutting down"): clients watch again from their cursor, on this gateway once it is back or
  //! on another replica. Called at shutdown, before the server's grace period, which watches (a
  //! stream that never ends by itself) would otherwise use up. Returns at once: the watches end
  //! on the pool.
  void EndWatches();

 private:
  friend class WatchReactor;
  //! Live watches register here until OnDone, so that EndWatches can reach them; false when
  //! watches are ending (then the watch must end at once).
  bool Register(WatchReactor* watch);
  void Unregister(WatchReactor* watch);
  rdg::v1::DeliveredReport Delivered(
      const storage::ReportRecord& report,
      const absl::flat_hash_map<std::string, storage::ExamRecord>& exams) const;

  worklist::ReportDesk& reports_;
  WorkerPool& pool_;
  const Authenticator& authenticator_;
  const config::InstitutionDirectory& directory_;
  const std::string platform_name_;
  const signing::ReceiptSigner& receipts_;
  const Clock& clock_;
  absl::Mutex watches_mu_;  //!< taken before a WatchReactor's own mutex, never after
  absl::flat_hash_set<WatchReactor*> watches_ ABSL_GUARDED_BY(watches_mu_);
  bool ending_ ABSL_GUARDED_BY(watches_mu_) = false;
};

}  // namespace rdg::api
