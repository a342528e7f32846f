// The monitoring port: HTTP (or HTTPS) beside the gRPC port, for Prometheus, health probes and
// the dashboard. Built on cpp-httplib (Debian libcpp-httplib-dev).
//
//   /healthz                 200 while the process serves (no credentials: probes carry none)
//   /readyz                  200 when the index answers, 503 with the reason otherwise
//   /metrics                 Prometheus text format            } an administrator only:
//   /dashboard, /dashboard/* the page, its data and assets     } bearer token or admin cert
//
// Credentials: `Authorization: Bearer <token>` (or the cookie the dashboard sets after
// `/dashboard?token=<token>`) — the service token (monitoring.token_file) or an administrator's
// own (monitoring.token_dir, admin_tokens.h) — or with tls a client certificate of role ADMIN
// signed by the platform CA. None: 401. A wrong or expired token or a certificate of any other
// role: 403. Every view of /metrics and the dashboard, allowed or refused, is audited.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/common/audit_throttle.h"
#include "gateway/config/institution_directory.h"
#include "gateway/monitoring/admin_tokens.h"
#include "rdg/v1/config.pb.h"
#include "storage/records.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib
namespace rdg::http {
class Listening;
}  // namespace rdg::http

namespace rdg::monitoring {

class MonitoringServer {
 public:
  struct Handlers {
    std::function<absl::StatusOr<std::string>()> metrics;         //!< exposition text
    std::function<absl::Status()> ready;                          //!< OK when ready to serve
    std::function<absl::StatusOr<std::string>()> dashboard_data;  //!< JSON
    //! Whether an administrator's client certificate (PEM) was revoked; none: never.
    std::function<bool(absl::string_view pem)> revoked;
    //! Writes the audit record of a view of /metrics or the dashboard, allowed or refused; an
    //! allowed view whose record cannot be written is not served (503).
    std::function<absl::Status(const storage::AuditRecord&)> audit;
  };
  //! Binds `config.listen` and serves on a thread of its own until destroyed.
  static absl::StatusOr<std::unique_ptr<MonitoringServer>> Start(
      const rdg::v1::MonitoringConfig& config, const rdg::v1::TlsConfig& tls,
      const config::InstitutionDirectory& directory, Handlers handlers);
  ~MonitoringServer();

  int port() const;

 private:
  MonitoringServer();
  void Route();

  enum class Access { kAllowed, kUnauthenticated, kForbidden };
  //! Who is asking and whether they may: the certificate's or the token's holder.
  struct Caller {
    Access access = Access::kUnauthenticated;
    std::string user;                   //!< certificate CN or token holder's name
    std::string institution;            //!< certificate O
    std::string subject;                //!< certificate subject, or "token:NAME"
    std::string peer;                   //!< "ipv4:10.1.2.3:50122"
    std::string why;                    //!< why refused
    std::optional<absl::Time> expires;  //!< of an administrator's token
  };
  Caller Check(const httplib::Request& request) const;
  //! `presented` as a token: the service token or an administrator's.
  Caller Token(const std::string& presented, Caller caller) const;
  //! The record of a view; refusals at most once a minute per address (counting the rest).
  absl::Status Audit(const Caller& caller, absl::string_view action) const;

  httplib::Server* server_ = nullptr;  //!< routed before listening_ owns it
  const config::InstitutionDirectory* directory_ = nullptr;
  Handlers handlers_;
  std::string token_;       //!< the service token (monitoring.token_file)
  std::string token_name_;  //!< its file's name, who the audit log says looked
  std::unique_ptr<AdministratorTokens> admin_tokens_;  //!< monitoring.token_dir
  mutable AuditThrottle refusals_;
  bool tls_ = false;
  std::unique_ptr<http::Listening> listening_;
};

}  // namespace rdg::monitoring
