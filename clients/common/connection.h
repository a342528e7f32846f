// How every RDG client reaches the gateway: mTLS with the user's certificate, from flags or the
// RDG_GATEWAY / RDG_CA / RDG_CERT / RDG_KEY environment variables.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace rdg::clients {

struct ConnectionOptions {
  std::string gateway;  //!< HOST:PORT
  std::string ca;       //!< platform CA (PEM)
  std::string cert;     //!< this user's certificate (PEM)
  std::string key;      //!< this user's private key (PEM)

  //! Adds --gateway/--ca/--cert/--key (defaults from the environment) to `app`.
  void AddTo(CLI::App& app);
  //! Builds an mTLS channel; on failure prints why and returns nullptr.
  std::shared_ptr<grpc::Channel> Connect() const;
};

//! "Connection failed" and friends, phrased for an operator (no stack of gRPC jargon).
std::string DescribeRpcError(const grpc::Status& status);

//! UNAVAILABLE answered by the gateway itself (it carries a RetryInfo detail): the gateway is
//! reachable but busy or short of something that passes (a limit, disk space). Not "unreachable".
bool GatewayIsBusy(const grpc::Status& status);

}  // namespace rdg::clients

namespace rdg::clients {
//! "INVALID_ARGUMENT", "ALREADY_EXISTS", … for JSON output.
std::string StatusCodeName(grpc::StatusCode code);
}  // namespace rdg::clients
