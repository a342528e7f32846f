#include "clients/common/connection.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "rdg/v1/ingest.pb.h"
#include "storage/base/posix_file.h"

namespace rdg::clients {
namespace {

std::string FromEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool ReadPem(const std::string& path, const char* what, std::string* out) {
  auto text = storage::ReadWholeFile(path, what);
  if (!text.ok()) {
    std::cerr << "error: " << text.status().message() << "\n";
    return false;
  }
  *out = *std::move(text);
  return true;
}

}  // namespace

void ConnectionOptions::AddTo(CLI::App& app) {
  gateway = FromEnv("RDG_GATEWAY");
  ca = FromEnv("RDG_CA");
  cert = FromEnv("RDG_CERT");
  key = FromEnv("RDG_KEY");
  app.add_option("--gateway", gateway, "gateway HOST:PORT [env RDG_GATEWAY]");
  app.add_option("--ca", ca, "platform CA certificate, PEM [env RDG_CA]");
  app.add_option("--cert", cert, "your certificate, PEM [env RDG_CERT]");
  app.add_option("--key", key, "your private key, PEM [env RDG_KEY]");
}

std::shared_ptr<grpc::Channel> ConnectionOptions::Connect() const {
  if (gateway.empty() || ca.empty() || cert.empty() || key.empty()) {
    std::cerr << "error: set --gateway, --ca, --cert and --key (or RDG_GATEWAY, RDG_CA, RDG_CERT, "
                 "RDG_KEY)\n";
    return nullptr;
  }
  grpc::SslCredentialsOptions ssl;
  if (!ReadPem(ca, "CA certificate", &ssl.pem_root_certs) ||
      !ReadPem(cert, "certificate", &ssl.pem_cert_chain) ||
      !ReadPem(key, "private key", &ssl.pem_private_key)) {
    return nullptr;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(32 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  // Reconnect within seconds once the gateway or the network is back (gRPC's default backoff
  // grows to two minutes); the callers pace their own retries.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  return grpc::CreateCustomChannel(gateway, grpc::SslCredentials(ssl), args);
}

bool GatewayIsBusy(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE || status.error_details().empty()) {
    return false;
  }
  rdg::v1::RpcStatus details;
  if (!details.ParseFromString(status.error_details())) return false;
  for (const auto& any : details.details()) {
    if (any.type_url() == "type.googleapis.com/google.rpc.RetryInfo") return true;
  }
  return false;
}

std::string DescribeRpcError(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (GatewayIsBusy(status)) return "the gateway is busy (" + status.error_message() + ")";
      // A gateway that refuses the client certificate at the TLS handshake (revoked, or not
      // issued by the platform CA) closes the connection without telling why.
      if (status.error_message().find("Socket closed") != std::string::npos ||
          status.error_message().find("Handshake") != std::string::npos) {
        return "gateway unreachable (" + status.error_message() +
               "); if it answers others, it refused this certificate at the TLS handshake: "
               "revoked, expired or not issued by the platform CA";
      }
      return "gateway unreachable (" + status.error_message() + ")";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "the gateway did not answer in time";
    default:
      return status.error_message();
  }
}

}  // namespace rdg::clients

namespace rdg::clients {

std::string StatusCodeName(grpc::StatusCode code) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

}  // namespace rdg::clients
