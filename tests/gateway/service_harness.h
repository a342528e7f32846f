// One gRPC service served in-process on 127.0.0.1, port 0, for the services' unit tests. The
// transport is plaintext: who calls is what the test's MockAuthenticator answers, so a test can
// say "a clinic calls the reading service" without certificates. Blocking work runs on a small
// WorkerPool, as in the gateway.
#pragma once

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/api/call_support.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/common.pb.h"
#include "rdg/v1/ingest.pb.h"
#include "storage/base/worker_pool.h"
#include "tests/mocks/mock_authenticator.h"

namespace rdg::testing {

inline const auth::Principal kClinic{"clinic-a1", rdg::v1::CLINIC, "clinic-a1"};
inline const auth::Principal kReader{"county-a", rdg::v1::READER, "reader-a-rad"};
inline const auth::Principal kAdmin{"province", rdg::v1::ADMIN, "admin"};

//! Matches an auth::Principal equal to `principal`.
MATCHER_P(IsPrincipal, principal, "") {
  return arg.institution == principal.institution && arg.role == principal.role &&
         arg.user == principal.user;
}

//! The retry delay an UNAVAILABLE answer suggests (google.rpc.RetryInfo in its details), or -1.
inline int64_t RetryDelaySeconds(const grpc::Status& status) {
  rdg::v1::RpcStatus details;
  if (!details.ParseFromString(status.error_details())) return -1;
  for (const auto& any : details.details()) {
    rdg::v1::RetryInfo retry;
    if (any.type_url() == api::kRetryInfoTypeUrl && retry.ParseFromString(any.value())) {
      return retry.retry_delay().seconds();
    }
  }
  return -1;
}

//! The institutions the tests name.
inline rdg::v1::GatewayConfig HarnessConfig() {
  rdg::v1::GatewayConfig config;
  for (auto [id, name] : {std::pair{"clinic-a1", "青山村卫生室"}, std::pair{"county-a", "县医院"},
                          std::pair{"province", "省平台"}}) {
    auto* i = config.add_institutions();
    i->set_id(id);
    i->set_name(name);
  }
  auto* q = config.add_queues();
  q->set_name("county-a/imaging");
  q->set_institution("county-a");
  q->set_department("imaging");
  return config;
}

//! The parts every service takes (ServiceContext), and the server once a service is added.
class ServiceHarness {
 public:
  ServiceHarness() : directory_(config_), context_{*pool_, authenticator_, directory_} {}
  ~ServiceHarness() { Stop(); }

  //! Ends the calls, stops the server and drains the pool: the fixture's TearDown calls it while
  //! the service and the mocks it uses are still alive.
  void Stop() {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      server_->Wait();
      server_.reset();
    }
    pool_.reset();
  }

  const api::ServiceContext& context() { return context_; }
  api::MockAuthenticator& authenticator() { return authenticator_; }
  const config::InstitutionDirectory& directory() const { return directory_; }

  //! Every call is made by `who`.
  void CallsAs(const auth::Principal& who) {
    ON_CALL(authenticator_, Authenticate(::testing::_)).WillByDefault(::testing::Return(who));
  }
  //! Every call is refused as unauthenticated (no or a foreign certificate).
  void CallsUnauthenticated() {
    ON_CALL(authenticator_, Authenticate(::testing::_))
        .WillByDefault(::testing::Return(absl::UnauthenticatedError("no client certificate")));
  }

  //! Serves `service` (which must outlive the harness) and returns a channel to it.
  std::shared_ptr<grpc::Channel> Serve(grpc::Service& service) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_NE(port, 0);
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                               grpc::InsecureChannelCredentials());
  }

  //! A client context that gives up after 10 s (a test never hangs on a lost answer).
  static std::unique_ptr<grpc::ClientContext> Call() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

 private:
  rdg::v1::GatewayConfig config_ = HarnessConfig();
  config::InstitutionDirectory directory_;
  ::testing::NiceMock<api::MockAuthenticator> authenticator_;
  std::unique_ptr<WorkerPool> pool_ = std::make_unique<WorkerPool>(2);
  api::ServiceContext context_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace rdg::testing
