// rdg.v1.ReadingService: worklists, claims, fetch, priors, reports and escalation.
#pragma once

#include "gateway/api/call_support.h"
#include "gateway/config/institution_directory.h"
#include "gateway/worklist/reading_desk.h"
#include "gateway/worklist/report_desk.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "storage/base/worker_pool.h"
#include "storage/blob_store.h"

namespace rdg::api {

class ReadingServiceImpl final : public rdg::v1::ReadingService::CallbackService {
 public:
  ReadingServiceImpl(worklist::ReadingDesk& desk, worklist::ReportDesk& reports,
                     const storage::BlobStore& blobs, const ServiceContext& context)
      : desk_(desk),
        reports_(reports),
        blobs_(blobs),
        pool_(context.pool),
        authenticator_(context.authenticator),
        directory_(context.directory) {}

  grpc::ServerUnaryReactor* GetWorklist(grpc::CallbackServerContext* ctx,
                                        const rdg::v1::WorklistRequest* request,
                                        rdg::v1::WorklistResponse* response) override;
  grpc::ServerUnaryReactor* ClaimExam(grpc::CallbackServerContext* ctx,
                                      const rdg::v1::ClaimRequest* request,
                                      rdg::v1::Claim* response) override;
  grpc::ServerUnaryReactor* RenewClaim(grpc::CallbackServerContext* ctx,
                                       const rdg::v1::ClaimRequest* request,
                                       rdg::v1::Claim* response) override;
  grpc::ServerUnaryReactor* ReleaseClaim(grpc::CallbackServerContext* ctx,
                                         const rdg::v1::ClaimRequest* request,
                                         rdg::v1::Claim* response) override;
  grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* FetchExam(
      grpc::CallbackServerContext* ctx, const rdg::v1::FetchExamRequest* request) override;
  grpc::ServerUnaryReactor* SubmitReport(grpc::CallbackServerContext* ctx,
                                         const rdg::v1::SubmitReportRequest* request,
                                         rdg::v1::ReportVersion* response) override;
  grpc::ServerUnaryReactor* GetPriors(grpc::CallbackServerContext* ctx,
                                      const rdg::v1::PriorsRequest* request,
                                      rdg::v1::PriorsResponse* response) override;
  grpc::ServerUnaryReactor* EscalateExam(grpc::CallbackServerContext* ctx,
                                         const rdg::v1::EscalateRequest* request,
                                         rdg::v1::Exam* response) override;
  grpc::ServerUnaryReactor* GetReports(grpc::CallbackServerContext* ctx,
                                       const rdg::v1::GetReportsRequest* request,
                                       rdg::v1::GetReportsResponse* response) override;

 private:
  worklist::ReadingDesk& desk_;
  worklist::ReportDesk& reports_;
  const storage::BlobStore& blobs_;
  WorkerPool& pool_;
  const Authenticator& authenticator_;
  const config::InstitutionDirectory& directory_;
};

}  // namespace rdg::api
