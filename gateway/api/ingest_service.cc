#include "gateway/api/ingest_service.h"

#include "absl/strings/str_cat.h"
#include "gateway/api/call_support.h"
#include "gateway/auth/rbac.h"
#include "gateway/common/live_streams.h"
#include "storage/status_macros.h"

namespace rdg::api {

//! One client-streaming upload. Each message is handled on the pool; the next read starts only
//! after the previous chunk is on disk, which bounds memory to one chunk per stream.
class UploadReactor final : public grpc::ServerReadReactor<rdg::v1::UploadRequest> {
 public:
  UploadReactor(IngestServiceImpl& service, grpc::CallbackServerContext* ctx,
                rdg::v1::UploadStatus* response)
      : service_(service), response_(response) {
    if (service_.active_uploads_.fetch_add(1) >= service_.limits_.max_concurrent_uploads()) {
      // Transient overload: UNAVAILABLE tells clients to back off and retry.
      Finish(ToGrpcStatus(absl::UnavailableError(
          "the gateway is busy: it is handling its maximum number of uploads; retry shortly")));
      return;
    }
    // The call's context is read here, on gRPC's thread, and never again.
    auto principal = service_.Admit(ctx);
    if (!principal.ok()) {
      Finish(ToGrpcStatus(principal.status()));
      return;
    }
    principal_ = *std::move(principal);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      service_.pool_.Post([this] { EndWithoutCommit(); });
      return;
    }
    service_.pool_.Post([this] { Process(); });
  }

  void OnDone() override {
    service_.active_uploads_.fetch_sub(1);
    delete this;
  }

 private:
  void Process() {
    // Once Finish() is called gRPC may run OnDone() and delete this reactor on another thread:
    // after that point nothing here may touch a member, so Step reports it through a local.
    bool finished = false;
    absl::Status status = Step(finished);
    if (!status.ok()) {
      handle_.reset();  // keeps the bytes received so far resumable (or discarded if rejected)
      Finish(ToGrpcStatus(status));
      return;
    }
    if (!finished) StartRead(&request_);
  }

  //! Handles one message; sets `finished` when it has finished the call (the last thing it does).
  absl::Status Step(bool& finished) {
    RDG_RETURN_IF_ERROR(CheckRequestLimits(request_));
    if (!attached_) {
      RDG_ASSIGN_OR_RETURN(auto attachment, service_.ingestor_.Attach(principal_, request_));
      attached_ = true;
      if (attachment.already_stored) {
        *response_ = *attachment.already_stored;
        finished = true;
        Finish(grpc::Status::OK);
        return absl::OkStatus();
      }
      handle_ = std::move(attachment.handle);
    } else if (request_.has_open() || !request_.session_id().empty()) {
      return absl::InvalidArgumentError("only the first message of an upload names its session");
    }
    if (static_cast<int64_t>(request_.data().size()) > service_.limits_.max_chunk_bytes()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "chunk of ", request_.data().size(), " bytes exceeds limits.max_chunk_bytes (",
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
  bool attached_ = false;
  std::unique_ptr<ingest::UploadHandle> handle_;
};

absl::StatusOr<auth::Principal> IngestServiceImpl::Admit(grpc::CallbackServerContext* ctx) const {
  RDG_ASSIGN_OR_RETURN(auto principal, Authenticate(ctx, directory_));
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

}  // namespace rdg::api
