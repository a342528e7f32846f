// Helpers shared by the service implementations: absl::Status → grpc::Status (the only place it
// happens), the caller's principal from the TLS peer certificate, and running blocking work of a
// unary call on the worker pool.
#pragma once

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/api/authenticator.h"
#include "gateway/api/request_limits.h"
#include "gateway/auth/peer_identities.h"
#include "gateway/auth/principal.h"
#include "gateway/config/institution_directory.h"
#include "gateway/signing/revocation.h"
#include "storage/base/worker_pool.h"

namespace rdg::api {

//! Type URL of rdg.v1.RetryInfo (google.rpc.RetryInfo on the wire) in gRPC error details.
inline constexpr char kRetryInfoTypeUrl[] = "type.googleapis.com/google.rpc.RetryInfo";
//! The retry delay the gateway suggests with each UNAVAILABLE of its own.
inline constexpr int kRetryDelaySeconds = 2;

//! The gRPC status of `status`, its payloads as rich error details; every UNAVAILABLE carries a
//! RetryInfo (the gateway is busy, not unreachable).
grpc::Status ToGrpcStatus(const absl::Status& status);

//! The principal from the call's verified mTLS peer certificate (auth::PeerIdentities: each
//! certificate parsed once, the revocation list asked on every call).
class TlsPeerAuthenticator final : public Authenticator {
 public:
  //! `revocations` (may be null): a certificate revoked since its connection was made is
  //! refused on its next call.
  explicit TlsPeerAuthenticator(const config::InstitutionDirectory& directory,
                                signing::RevocationList* revocations = nullptr)
      : identities_(directory, revocations) {}
  absl::StatusOr<auth::Principal> Authenticate(
      const grpc::CallbackServerContext& ctx) const override;

 private:
  const auth::PeerIdentities identities_;
};

//! What every service needs to answer a call: the pool its blocking work runs on, who is calling,
//! and the institutions (names in answers).
struct ServiceContext {
  WorkerPool& pool;
  const Authenticator& authenticator;
  const config::InstitutionDirectory& directory;
};

//! Checks `request` against the field length limits (request_limits.h), then runs `fn`
//! (returning absl::Status) on the pool and finishes the unary call with its result. A request
//! over the limits is answered at once, without queuing anything; a call cancelled while it
//! waited in the pool's queue is not run.
template <typename Fn>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, WorkerPool& pool,
                                   const google::protobuf::Message& request, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::Status limits = CheckRequestLimits(request); !limits.ok()) {
    reactor->Finish(ToGrpcStatus(limits));
    return reactor;
  }
  pool.Post([ctx, reactor, fn = std::move(fn)]() mutable {
    // The caller gave up (its deadline passed, it cancelled) while this waited: nothing is done.
    if (ctx->IsCancelled()) {
      reactor->Finish(grpc::Status::CANCELLED);
      return;
    }
    reactor->Finish(ToGrpcStatus(fn()));
  });
  return reactor;
}

}  // namespace rdg::api
