#include "gateway/api/call_support.h"

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace rdg::api {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<auth::Principal> Authenticate(const grpc::CallbackServerContext* ctx,
                                             const config::InstitutionDirectory& directory) {
  auto auth_context = ctx->auth_context();
  if (auth_context == nullptr || !auth_context->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("a client certificate issued by the platform CA is required");
  }
  auto pem = auth_context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return absl::UnauthenticatedError("no client certificate presented");
  return auth::PrincipalFromCertificate(absl::string_view(pem.front().data(), pem.front().size()),
                                        directory);
}

}  // namespace rdg::api
