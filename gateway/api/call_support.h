// Helpers shared by the service implementations: absl::Status → grpc::Status (the only place it
// happens), the caller's principal from the TLS peer certificate, and running blocking work of a
// unary call on the worker pool.
#pragma once

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/auth/principal.h"
#include "gateway/common/worker_pool.h"
#include "gateway/config/institution_directory.h"

namespace rdg::api {

grpc::Status ToGrpcStatus(const absl::Status& status);

//! The authenticated principal of the call (mTLS peer certificate).
absl::StatusOr<auth::Principal> Authenticate(const grpc::CallbackServerContext* ctx,
                                             const config::InstitutionDirectory& directory);

//! Runs `fn` (returning absl::Status) on the pool and finishes the unary call with its result.
template <typename Fn>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, WorkerPool& pool, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  pool.Post([reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn())); });
  return reactor;
}

}  // namespace rdg::api
