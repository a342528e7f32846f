// The monitoring port: HTTP (or HTTPS) beside the gRPC port, for Prometheus, health probes and
// the dashboard. Built on cpp-httplib (Debian libcpp-httplib-dev).
//
//   /healthz                 200 while the process serves (no credentials: probes carry none)
//   /readyz                  200 when the index answers, 503 with the reason otherwise
//   /metrics                 Prometheus text format            } an administrator only:
//   /dashboard, /dashboard/* the page, its data and assets     } bearer token or admin cert
//
// Credentials: `Authorization: Bearer <token>` (or the cookie the dashboard sets after
// `/dashboard?token=<token>`), or with tls a client certificate of role ADMIN signed by the
// platform CA. None: 401. A wrong token or a certificate of any other role: 403.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/config.pb.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace rdg::monitoring {

class MonitoringServer {
 public:
  struct Handlers {
    std::function<absl::StatusOr<std::string>()> metrics;         //!< exposition text
    std::function<absl::Status()> ready;                          //!< OK when ready to serve
    std::function<absl::StatusOr<std::string>()> dashboard_data;  //!< JSON
    //! Whether an administrator's client certificate (PEM) was revoked; none: never.
    std::function<bool(absl::string_view pem)> revoked;
  };
  //! Binds `config.listen` and serves on a thread of its own until destroyed.
  static absl::StatusOr<std::unique_ptr<MonitoringServer>> Start(
      const rdg::v1::MonitoringConfig& config, const rdg::v1::TlsConfig& tls,
      const config::InstitutionDirectory& directory, Handlers handlers);
  ~MonitoringServer();

  int port() const { return port_; }

 private:
  MonitoringServer() = default;
  void Route();

  enum class Access { kAllowed, kUnauthenticated, kForbidden };
  Access Check(const httplib::Request& request) const;

  std::unique_ptr<httplib::Server> server_;
  const config::InstitutionDirectory* directory_ = nullptr;
  Handlers handlers_;
  std::string token_;
  bool tls_ = false;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace rdg::monitoring
