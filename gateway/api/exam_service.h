// rdg.v1.ExamService: a clinic's listing of its exams and byte-identical download. Every access
// to patient data is written to the audit log.
#pragma once

#include "gateway/api/call_support.h"
#include "gateway/auth/principal.h"
#include "gateway/common/clock.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/ingest.grpc.pb.h"
#include "storage/base/worker_pool.h"
#include "storage/blob_store.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"

namespace rdg::api {

class ExamServiceImpl final : public rdg::v1::ExamService::CallbackService {
 public:
  //! The index's stores it uses.
  struct Stores {
    storage::ExamStore& exams;
    storage::AuditStore& audit;
  };
  ExamServiceImpl(Stores stores, storage::BlobStore& blobs, const ServiceContext& context,
                  const Clock& clock)
      : stores_(stores),
        blobs_(blobs),
        pool_(context.pool),
        authenticator_(context.authenticator),
        directory_(context.directory),
        clock_(clock) {}

  grpc::ServerUnaryReactor* ListExams(grpc::CallbackServerContext* ctx,
                                      const rdg::v1::ListExamsRequest* request,
                                      rdg::v1::ListExamsResponse* response) override;
  grpc::ServerUnaryReactor* GetExam(grpc::CallbackServerContext* ctx,
                                    const rdg::v1::GetExamRequest* request,
                                    rdg::v1::GetExamResponse* response) override;
  grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* DownloadExam(
      grpc::CallbackServerContext* ctx, const rdg::v1::DownloadExamRequest* request) override;

 private:
  //! Authorises and loads the exam the caller may see; audits the access.
  absl::StatusOr<storage::ExamRecord> OpenExam(const auth::Principal& principal,
                                               const std::string& exam_id,
                                               absl::string_view action);

  const Stores stores_;
  storage::BlobStore& blobs_;
  WorkerPool& pool_;
  const Authenticator& authenticator_;
  const config::InstitutionDirectory& directory_;
  const Clock& clock_;
};

}  // namespace rdg::api
