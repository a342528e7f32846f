// rdg.v1.IngestService on the gRPC callback API: one reactor per upload stream; blocking disk and
// index work runs on the worker pool, never inside a reaction.
#pragma once

#include <atomic>

#include "gateway/common/worker_pool.h"
#include "gateway/config/institution_directory.h"
#include "gateway/ingest/ingestor.h"
#include "rdg/v1/ingest.grpc.pb.h"

namespace rdg::api {

class IngestServiceImpl final : public rdg::v1::IngestService::CallbackService {
 public:
  IngestServiceImpl(ingest::Ingestor& ingestor, WorkerPool& pool,
                    const config::InstitutionDirectory& directory, const rdg::v1::Limits& limits)
      : ingestor_(ingestor), pool_(pool), directory_(directory), limits_(limits) {}

  grpc::ServerUnaryReactor* OpenUpload(grpc::CallbackServerContext* ctx,
                                       const rdg::v1::OpenUploadRequest* request,
                                       rdg::v1::UploadStatus* response) override;
  grpc::ServerReadReactor<rdg::v1::UploadRequest>* Upload(grpc::CallbackServerContext* ctx,
                                                          rdg::v1::UploadStatus* response) override;
  grpc::ServerUnaryReactor* GetUpload(grpc::CallbackServerContext* ctx,
                                      const rdg::v1::GetUploadRequest* request,
                                      rdg::v1::UploadStatus* response) override;
  grpc::ServerUnaryReactor* AbortUpload(grpc::CallbackServerContext* ctx,
                                        const rdg::v1::GetUploadRequest* request,
                                        rdg::v1::UploadStatus* response) override;

 private:
  friend class UploadReactor;
  //! Authenticates the call and checks the upload permission.
  absl::StatusOr<auth::Principal> Admit(grpc::CallbackServerContext* ctx) const;

  ingest::Ingestor& ingestor_;
  WorkerPool& pool_;
  const config::InstitutionDirectory& directory_;
  const rdg::v1::Limits limits_;
  std::atomic<int> active_uploads_{0};  //!< upload streams in flight (limits.max_concurrent_uploads)
};

}  // namespace rdg::api
