// gMock of api::Authenticator: the services' unit tests say who calls without certificates.
#pragma once

#include <gmock/gmock.h>

#include "gateway/api/authenticator.h"

namespace rdg::api {

class MockAuthenticator : public Authenticator {
 public:
  MOCK_METHOD(absl::StatusOr<auth::Principal>, Authenticate, (const grpc::CallbackServerContext&),
              (const, override));
};

}  // namespace rdg::api
