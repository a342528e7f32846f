#include "gateway/api/ingest_service.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/api/call_support.h"
#include "gateway/auth/rbac.h"
#include "gateway/common/live_streams.h"
#include "rdg/v1/call_metadata.h"
#include "storage/base/status_macros.h"

namespace rdg::api {

//! One client-streaming upload. Each message is handled on the pool; the next read starts only
//! after the previous chunk is on disk, which bounds memory to one chunk per stream.
class UploadReactor final : public grpc::ServerReadReactor<rdg::v1::UploadRequest> {
 public:
  UploadReactor(IngestServiceImpl& service, grpc::CallbackServerContext* ctx,
                rdg::v1::UploadStatus* response)
      : service_(service), response_(response) {
    // Whatever the outcome, the client can tell the gateway's answer from a connection that
    // broke (the edge agent quarantines an object the gateway repeatedly fails on).
    ctx->AddTrailingMetadata(rdg::v1::kAnsweredByGatewayKey, "1");
    // The call's context is read here, on gRPC's thread; later only the stall sweep cancels it.
    auto principal = service_.Admit(ctx);
    absl::Status admitted =
        principal.ok() ? service_.Register(this, ctx, principal->institution) : principal.status();
    if (!admitted.ok()) {
      Finish(ToGrpcStatus(admitted));
      return;
    }
    registered_ = true;
    principal_ = *std::move(principal);
    Read();
  }

  void OnReadDone(bool ok) override {
    service_.MarkWaiting(this, false);
    if (!ok) {
      service_.pool_.Post([this] { EndWithoutCommit(); });
      return;
    }
    service_.pool_.Post([this] { Process(); });
  }

  void OnDone() override {
    if (registered_) service_.Unregister(this);
    delete this;
  }

 private:
  void Process() {
    // Once Finish() is called gRPC may run OnDone() and delete this reactor on another thread:
    // after that point nothing here may touch a member, so Step reports it through a local.
    bool finished = false;
    absl::Status status = Step(finished);
    if (!status.ok()) {
      // A request that can never succeed (past the declared size, a bad offset, an oversized
      // chunk, too many messages) leaves nothing behind; otherwise the bytes received so far
      // stay resumable (a gap, a transient failure).
      if (handle_ != nullptr && CanNeverSucceed(status)) handle_->Abandon();
      handle_.reset();
      Finish(ToGrpcStatus(status));
      return;
    }
    if (!finished) Read();
  }

  void Read() {
    service_.MarkWaiting(this, true);
    StartRead(&request_);
  }

  static bool CanNeverSucceed(const absl::Status& s) {
    return absl::IsInvalidArgument(s) || absl::IsResourceExhausted(s) || absl::IsOutOfRange(s);
  }

  //! Handles one message; sets `finished` when it has finished the call (the last thing it does).
  absl::Status Step(bool& finished) {
    RDG_RETURN_IF_ERROR(CheckRequestLimits(request_));
    // Every message costs a pool task: a stream may send about one per KiB of its object (plus
    // slack for resends), never an unbounded flood of empty or overlapping ones.
    if (handle_ != nullptr && ++messages_ > handle_->size() / 1024 + 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat("the upload stream sent ", messages_, " messages for an object of ",
                       handle_->size(), " bytes; send the object in chunks of 64 KiB or more"));
    }
    if (!attached_) {
      auto attached = service_.ingestor_.Attach(principal_, request_);
      if (absl::IsAborted(attached.status()) &&
          service_.CancelIdleHolder(principal_.institution, WantedSession())) {
        // The holder was a stream whose client went silent: it is ending, the retry takes over.
        return absl::AbortedError(
            "this upload was held by a silent connection, which is now closed; retry at once");
      }
      RDG_ASSIGN_OR_RETURN(auto attachment, std::move(attached));
      attached_ = true;
      if (attachment.already_stored) {
        *response_ = *attachment.already_stored;
        finished = true;
        Finish(grpc::Status::OK);
        return absl::OkStatus();
      }
      handle_ = std::move(attachment.handle);
      service_.MarkAttached(this, handle_->session_id());
    } else if (request_.has_open() || !request_.session_id().empty()) {
      return absl::InvalidArgumentError("only the first message of an upload names its session");
    }
    if (static_cast<int64_t>(request_.data().size()) > service_.limits_.max_chunk_bytes()) {
      return absl::ResourceExhaustedError(absl::StrCat("chunk of ", request_.data().size(),
                                                       " bytes exceeds limits.max_chunk_bytes (",
                                                       service_.limits_.max_chunk_bytes(), ")"));
    }
    RDG_RETURN_IF_ERROR(handle_->Append(request_.offset(), request_.data()));
    if (request_.commit()) {
      auto committed = handle_->Commit();
      handle_.reset();
      RDG_RETURN_IF_ERROR(committed.status());
      *response_ = *std::move(committed);
      finished = true;
      Finish(grpc::Status::OK);
    }
    return absl::OkStatus();
  }

  //! The session the first message asks for: named, or the caller's open one for that content.
  std::string WantedSession() {
    if (!request_.session_id().empty()) return request_.session_id();
    auto found = service_.ingestor_.Open(principal_, request_.open(), /*persist=*/false);
    return found.ok() ? found->session_id() : "";
  }

  //! The client half-closed (or went away) without committing: keep the bytes for a resume.
  void EndWithoutCommit() {
    if (!handle_) {
      Finish(ToGrpcStatus(absl::InvalidArgumentError("empty upload stream")));
      return;
    }
    *response_ = handle_->Detach();
    handle_.reset();
    Finish(grpc::Status::OK);
  }

  IngestServiceImpl& service_;
  const LiveStream live_{LiveStreams().uploads};
  rdg::v1::UploadStatus* response_;
  rdg::v1::UploadRequest request_;
  auth::Principal principal_;
  bool registered_ = false;  //!< counted in the service's stream limits
  bool attached_ = false;
  int64_t messages_ = 0;  //!< data messages after the first
  std::unique_ptr<ingest::UploadHandle> handle_;
};

absl::Status IngestServiceImpl::Register(const void* reactor, grpc::CallbackServerContext* ctx,
                                         const std::string& institution) {
  // Transient overload: UNAVAILABLE tells clients to back off and retry.
  RDG_ASSIGN_OR_RETURN(ingest::UploadSlots::Slot slot, slots_.Acquire(institution));
  absl::MutexLock lock(&streams_mu_);
  const absl::Time now = clock_.Now();
  Stream stream;
  stream.ctx = ctx;
  stream.institution = institution;
  stream.started = stream.waiting_since = now;
  stream.slot = std::move(slot);
  streams_.emplace(reactor, std::move(stream));
  return absl::OkStatus();
}

void IngestServiceImpl::Unregister(const void* reactor) {
  absl::MutexLock lock(&streams_mu_);
  if (!streams_.contains(reactor)) return;
  auto not_cancelling = [this, reactor]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) {
    return !streams_.at(reactor).cancelling;
  };
  streams_mu_.Await(absl::Condition(&not_cancelling));
  streams_.erase(reactor);  // and with it, its slot
}

void IngestServiceImpl::MarkWaiting(const void* reactor, bool waiting) {
  absl::MutexLock lock(&streams_mu_);
  auto it = streams_.find(reactor);
  if (it == streams_.end()) return;
  it->second.waiting = waiting;
  if (waiting) it->second.waiting_since = clock_.Now();
}

void IngestServiceImpl::MarkAttached(const void* reactor, const std::string& session_id) {
  absl::MutexLock lock(&streams_mu_);
  if (auto it = streams_.find(reactor); it != streams_.end()) it->second.session_id = session_id;
}

int IngestServiceImpl::CancelStalledStreams() {
  const absl::Time now = clock_.Now();
  const absl::Duration idle = absl::Seconds(limits_.upload_idle_seconds());
  const absl::Duration longest = absl::Seconds(limits_.max_upload_stream_seconds());
  return CancelWhere([&](const Stream& s) {
    return (s.waiting && now - s.waiting_since > idle) || now - s.started > longest;
  });
}

bool IngestServiceImpl::CancelIdleHolder(const std::string& institution,
                                         const std::string& session_id) {
  return CancelWhere([&](const Stream& s) {
           return s.waiting && s.institution == institution && s.session_id == session_id;
         }) > 0;
}

int IngestServiceImpl::CancelWhere(const std::function<bool(const Stream&)>& pick) {
  // TryCancel may run the stream's reactions on this thread, and those take streams_mu_: cancel
  // without the lock, while `cancelling` keeps Unregister (and so the context's end) waiting.
  std::vector<std::pair<const void*, grpc::CallbackServerContext*>> chosen;
  {
    absl::MutexLock lock(&streams_mu_);
    for (auto& [reactor, stream] : streams_) {
      if (stream.cancelling || !pick(stream)) continue;
      stream.cancelling = true;
      chosen.emplace_back(reactor, stream.ctx);
    }
  }
  for (const auto& [reactor, ctx] : chosen) ctx->TryCancel();
  absl::MutexLock lock(&streams_mu_);
  for (const auto& [reactor, ctx] : chosen) streams_.at(reactor).cancelling = false;
  return static_cast<int>(chosen.size());
}

absl::StatusOr<auth::Principal> IngestServiceImpl::Admit(grpc::CallbackServerContext* ctx) const {
  RDG_ASSIGN_OR_RETURN(auto principal, authenticator_.Authenticate(*ctx));
  RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kUpload));
  return principal;
}

grpc::ServerUnaryReactor* IngestServiceImpl::OpenUpload(grpc::CallbackServerContext* ctx,
                                                        const rdg::v1::OpenUploadRequest* request,
                                                        rdg::v1::UploadStatus* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Admit(ctx));
    RDG_ASSIGN_OR_RETURN(*response, ingestor_.Open(principal, *request, /*persist=*/true));
    return absl::OkStatus();
  });
}

grpc::ServerReadReactor<rdg::v1::UploadRequest>* IngestServiceImpl::Upload(
    grpc::CallbackServerContext* ctx, rdg::v1::UploadStatus* response) {
  return new UploadReactor(*this, ctx, response);
}

grpc::ServerUnaryReactor* IngestServiceImpl::GetUpload(grpc::CallbackServerContext* ctx,
                                                       const rdg::v1::GetUploadRequest* request,
                                                       rdg::v1::UploadStatus* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Admit(ctx));
    RDG_ASSIGN_OR_RETURN(*response, ingestor_.Status(principal, request->session_id()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* IngestServiceImpl::AbortUpload(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::GetUploadRequest* request,
                                                         rdg::v1::UploadStatus* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Admit(ctx));
    RDG_ASSIGN_OR_RETURN(*response, ingestor_.Abort(principal, request->session_id()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* IngestServiceImpl::ListUploads(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::ListUploadsRequest* request,
                                                         rdg::v1::ListUploadsResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Admit(ctx));
    RDG_ASSIGN_OR_RETURN(*response,
                         ingestor_.List(principal, request->page_size(), request->page_token()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* IngestServiceImpl::GetIngestLimits(
    grpc::CallbackServerContext* ctx, const rdg::v1::GetIngestLimitsRequest* request,
    rdg::v1::IngestLimits* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Admit(ctx));
    (void)principal;
    response->set_max_object_bytes(limits_.max_object_bytes());
    response->set_max_lab_message_bytes(limits_.max_lab_message_bytes());
    response->set_max_sequence_depth(parsing_.max_sequence_depth());
    response->set_max_elements(parsing_.max_elements());
    return absl::OkStatus();
  });
}

}  // namespace rdg::api
