// rdg.v1.DeliveryService: the origin clinic's report feed (server-streaming watch resumable from a
// cursor, and polling), acknowledgement, and the latest report of one exam.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "gateway/api/call_support.h"
#include "gateway/common/clock.h"
#include "gateway/config/institution_directory.h"
#include "gateway/signing/receipt_signer.h"
#include "gateway/worklist/report_desk.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "storage/base/worker_pool.h"

namespace rdg::api {

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

 private:
  friend class WatchReactor;
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
};

}  // namespace rdg::api
