#include "gateway/api/call_support.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/common/audit_throttle.h"
#include "glog/logging.h"
#include "rdg/v1/ingest.pb.h"
#include "storage/base/random.h"
#include "storage/base/status_macros.h"

namespace rdg::api {

namespace {

// Codes that mean the gateway itself failed. Their messages come from the database, the
// filesystem or a library (table names, paths, SQL) and help an operator, not a clinic or an
// attacker: the caller gets a reference, the operators' log the detail under it.
bool IsOwnFailure(absl::StatusCode code) {
  return code == absl::StatusCode::kInternal || code == absl::StatusCode::kUnknown ||
         code == absl::StatusCode::kDataLoss;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  if (IsOwnFailure(status.code())) {
    const std::string reference = storage::RandomHex(6);
    LOG(ERROR) << "call failed, reference " << reference << ": " << status;
    message = absl::StrCat("the gateway failed (reference ", reference,
                           "); its operators' log has the detail");
  }
  // Payloads (e.g. the HL7 ACK of a rejected lab message) travel as gRPC rich error details:
  // a google.rpc.Status-compatible RpcStatus whose details are Any messages.
  rdg::v1::RpcStatus details;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    auto* any = details.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (code == grpc::StatusCode::UNAVAILABLE) {
    // The gateway answered, so it is reachable: it is busy or short of something that passes.
    rdg::v1::RetryInfo retry;
    retry.mutable_retry_delay()->set_seconds(kRetryDelaySeconds);
    auto* any = details.add_details();
    any->set_type_url(kRetryInfoTypeUrl);
    any->set_value(retry.SerializeAsString());
  }
  if (details.details_size() == 0) return grpc::Status(code, message);
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::StatusOr<auth::Principal> TlsPeerAuthenticator::Authenticate(
    const grpc::CallbackServerContext& ctx) const {
  auto auth_context = ctx.auth_context();
  if (auth_context == nullptr || !auth_context->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("a client certificate issued by the platform CA is required");
  }
  auto pem = auth_context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return absl::UnauthenticatedError("no client certificate presented");
  RDG_ASSIGN_OR_RETURN(auth::Principal principal, identities_.Resolve(absl::string_view(
                                                      pem.front().data(), pem.front().size())));
  principal.peer = PeerName(ctx.peer());
  return principal;
}

}  // namespace rdg::api
