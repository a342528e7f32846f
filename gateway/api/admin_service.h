// rdg.v1.AdminService: figures for administrators (admin role only). Administrators see figures,
// not images: nothing here returns patient data — except the online backup (BackupIndex,
// BackupBlobs), which only the administrators listed in the configuration's backup_users may
// pull. Implemented: GetQueues (depth, being read, oldest waiting, overdue per queue),
// GetTurnaround (completed SLA stages over a window, grouped), ListBreaches (recorded SLA
// breaches), QueryAudit, ExportAudit (the log with its hash chain and signed checkpoints),
// ListIdentityConflicts (the patient-identity review list) and the backup.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/api/call_support.h"
#include "gateway/auth/principal.h"
#include "gateway/common/clock.h"
#include "gateway/common/storage_guard.h"
#include "gateway/config/institution_directory.h"
#include "gateway/outbound/payloads.h"
#include "rdg/v1/admin.grpc.pb.h"
#include "storage/base/worker_pool.h"
#include "storage/blob_store.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"
#include "storage/index/identity_conflict_store.h"
#include "storage/index/index_backup.h"
#include "storage/index/outbound_store.h"
#include "storage/index/sla_store.h"
#include "storage/index/worklist_store.h"
#include "storage/records.h"

namespace rdg::api {

//! What the online backup reads and where its index snapshots are made (never left behind).
struct BackupSource {
  const storage::BlobStore* blobs = nullptr;
  std::string scratch_dir;              //!< on the index's filesystem: the data dir
  std::vector<std::string> users;       //!< "institution/user" allowed to pull backups
  std::string index_path;               //!< its size (and its WAL's) is what a snapshot needs
  const StorageGuard* guard = nullptr;  //!< free space and reserve; none: not checked
};

class AdminServiceImpl final : public rdg::v1::AdminService::CallbackService {
 public:
  //! The index's stores it uses.
  struct Stores {
    storage::ExamStore& exams;
    storage::WorklistStore& worklist;
    storage::SlaStore& sla;
    storage::AuditStore& audit;
    storage::IdentityConflictStore& identity_conflicts;
    storage::IndexBackup& backup;
    storage::OutboundStore& outbound;
  };
  //! `queues`: every configured queue, listed even while empty.
  AdminServiceImpl(Stores stores, const ServiceContext& context, const Clock& clock,
                   std::vector<std::string> queues, BackupSource backup = {},
                   std::vector<outbound::Destination> destinations = {})
      : stores_(stores),
        pool_(context.pool),
        authenticator_(context.authenticator),
        directory_(context.directory),
        clock_(clock),
        queues_(std::move(queues)),
        backup_(std::move(backup)),
        destinations_(std::move(destinations)) {}

  grpc::ServerUnaryReactor* GetQueues(grpc::CallbackServerContext* ctx,
                                      const rdg::v1::QueuesRequest* request,
                                      rdg::v1::QueuesResponse* response) override;
  grpc::ServerUnaryReactor* QueryAudit(grpc::CallbackServerContext* ctx,
                                       const rdg::v1::AuditRequest* request,
                                       rdg::v1::AuditResponse* response) override;
  grpc::ServerUnaryReactor* ExportAudit(grpc::CallbackServerContext* ctx,
                                        const rdg::v1::ExportAuditRequest* request,
                                        rdg::v1::ExportAuditResponse* response) override;
  grpc::ServerUnaryReactor* GetTurnaround(grpc::CallbackServerContext* ctx,
                                          const rdg::v1::TurnaroundRequest* request,
                                          rdg::v1::TurnaroundResponse* response) override;
  grpc::ServerUnaryReactor* ListBreaches(grpc::CallbackServerContext* ctx,
                                         const rdg::v1::BreachesRequest* request,
                                         rdg::v1::BreachesResponse* response) override;
  grpc::ServerUnaryReactor* ListIdentityConflicts(
      grpc::CallbackServerContext* ctx, const rdg::v1::IdentityConflictsRequest* request,
      rdg::v1::IdentityConflictsResponse* response) override;
  grpc::ServerUnaryReactor* GetOutbound(grpc::CallbackServerContext* ctx,
                                        const rdg::v1::OutboundRequest* request,
                                        rdg::v1::OutboundResponse* response) override;
  grpc::ServerUnaryReactor* RetryOutbound(grpc::CallbackServerContext* ctx,
                                          const rdg::v1::RetryOutboundRequest* request,
                                          rdg::v1::RetryOutboundResponse* response) override;
  grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* BackupIndex(
      grpc::CallbackServerContext* ctx, const rdg::v1::BackupIndexRequest* request) override;
  grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* BackupBlobs(
      grpc::CallbackServerContext* ctx, const rdg::v1::BackupBlobsRequest* request) override;

 private:
  //! The caller, if an administrator; PERMISSION_DENIED otherwise.
  absl::StatusOr<auth::Principal> Administrator(grpc::CallbackServerContext* ctx);
  //! UNAVAILABLE when an index snapshot would take the disk below its reserve.
  absl::Status RoomForSnapshot() const;
  //! OK when `who` may pull backups (an administrator listed in backup_users).
  absl::Status MayBackUp(const absl::StatusOr<auth::Principal>& who) const;
  //! BackupIndex on the pool: the snapshot, open and already unlinked, as one object.
  absl::StatusOr<std::vector<storage::ObjectRecord>> SnapshotIndex(
      const auth::Principal& who, std::shared_ptr<std::unique_ptr<storage::BlobReader>> reader);

  const Stores stores_;
  WorkerPool& pool_;
  const Authenticator& authenticator_;
  const config::InstitutionDirectory& directory_;
  const Clock& clock_;
  const std::vector<std::string> queues_;
  const BackupSource backup_;
  const std::vector<outbound::Destination> destinations_;  //!< configured, by name
  //! An index snapshot exists (from its making until its stream ends): one at a time.
  std::shared_ptr<std::atomic<bool>> snapshot_busy_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace rdg::api
