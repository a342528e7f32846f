// rdg.v1.IngestService on the gRPC callback API: one reactor per upload stream; blocking disk and
// index work runs on the worker pool, never inside a reaction.
#pragma once

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/api/call_support.h"
#include "gateway/common/clock.h"
#include "gateway/ingest/ingestor.h"
#include "gateway/ingest/upload_slots.h"
#include "rdg/v1/ingest.grpc.pb.h"
#include "storage/base/worker_pool.h"

namespace rdg::api {

class IngestServiceImpl final : public rdg::v1::IngestService::CallbackService {
 public:
  //! `clock` times upload streams (idle, stalled): the real clock in the gateway.
  IngestServiceImpl(ingest::Ingestor& ingestor, const ServiceContext& context,
                    ingest::UploadSlots& slots, const rdg::v1::Limits& limits,
                    const rdg::v1::ParserConfig& parsing, const Clock& clock)
      : ingestor_(ingestor),
        slots_(slots),
        pool_(context.pool),
        authenticator_(context.authenticator),
        limits_(limits),
        parsing_(parsing),
        clock_(clock) {}

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
  grpc::ServerUnaryReactor* ListUploads(grpc::CallbackServerContext* ctx,
                                        const rdg::v1::ListUploadsRequest* request,
                                        rdg::v1::ListUploadsResponse* response) override;
  grpc::ServerUnaryReactor* GetIngestLimits(grpc::CallbackServerContext* ctx,
                                            const rdg::v1::GetIngestLimitsRequest* request,
                                            rdg::v1::IngestLimits* response) override;

  //! Cancels upload streams that waited for the client longer than limits.upload_idle_seconds
  //! or have run longer than limits.max_upload_stream_seconds (their bytes stay resumable);
  //! returns how many. Called by the gateway's housekeeping.
  int CancelStalledStreams();

 private:
  friend class UploadReactor;
  //! Authenticates the call and checks the upload permission.
  absl::StatusOr<auth::Principal> Admit(grpc::CallbackServerContext* ctx) const;

  //! One upload stream in flight.
  struct Stream {
    grpc::CallbackServerContext* ctx = nullptr;  //!< valid until OnDone (which unregisters)
    std::string institution;
    absl::Time started;
    absl::Time waiting_since;  //!< when the stream began waiting for the client's next message
    bool waiting = false;      //!< a read is pending (otherwise the gateway is working on it)
    bool cancelling = false;   //!< the sweep is cancelling it: OnDone waits (ctx stays valid)
    std::string session_id;    //!< the upload session it holds, once attached
    ingest::UploadSlots::Slot slot;  //!< its place under the upload limits
  };
  //! Admits a new stream under the gateway-wide and the per-institution limits (UNAVAILABLE
  //! with the reason when either is reached).
  absl::Status Register(const void* reactor, grpc::CallbackServerContext* ctx,
                        const std::string& institution);
  void Unregister(const void* reactor);
  //! The stream waits for the client's next message (`waiting`) or the gateway works on one.
  void MarkWaiting(const void* reactor, bool waiting);
  //! The stream holds `session_id` now.
  void MarkAttached(const void* reactor, const std::string& session_id);
  //! A new stream of `institution` wants `session_id`, held by another stream: if that one is
  //! waiting for its client (a connection that died without a word), it is ended so that the
  //! resume takes over. Returns whether one was ended.
  bool CancelIdleHolder(const std::string& institution, const std::string& session_id);
  //! Cancels the streams `pick` selects, outside the lock (see CancelStalledStreams).
  int CancelWhere(const std::function<bool(const Stream&)>& pick);

  ingest::Ingestor& ingestor_;
  ingest::UploadSlots& slots_;
  WorkerPool& pool_;
  const Authenticator& authenticator_;
  const rdg::v1::Limits limits_;
  const rdg::v1::ParserConfig parsing_;
  const Clock& clock_;
  absl::Mutex streams_mu_;
  absl::flat_hash_map<const void*, Stream> streams_ ABSL_GUARDED_BY(streams_mu_);
};

}  // namespace rdg::api
