// Who is calling: the seam between a gRPC call and the principal the services authorise. The
// gateway's implementation is TlsPeerAuthenticator (call_support.h: the verified mTLS client
// certificate); unit tests of the services use tests/mocks/mock_authenticator.h.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "gateway/auth/principal.h"

namespace rdg::api {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  //! The principal of the call, or UNAUTHENTICATED with the reason. Thread-safe.
  virtual absl::StatusOr<auth::Principal> Authenticate(
      const grpc::CallbackServerContext& ctx) const = 0;
};

}  // namespace rdg::api
