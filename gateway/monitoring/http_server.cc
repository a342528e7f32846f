#include "gateway/monitoring/http_server.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gateway/auth/principal.h"
#include "gateway/http/https_server.h"
#include "gateway/monitoring/admin_tokens.h"
#include "gateway/monitoring/dashboard.h"
#include "storage/base/digest.h"
#include "storage/base/openssl_support.h"
#include "storage/base/posix_file.h"
#include "storage/base/status_macros.h"

namespace rdg::monitoring {
namespace {

constexpr char kCookie[] = "rdg_monitoring";
//! The accept queue of the monitoring port (the kernel caps it at net.core.somaxconn): with
//! cpp-httplib's 5, more connections arriving at once than the accept loop takes in the same
//! instant (a burst of idle connections, then a /healthz probe) overflow it, and the probe waits
//! out TCP's retransmission backoff (1, 3, 7, 15 s …).
constexpr int kListenBacklog = 4096;
//! Threads serving monitoring connections (see Harden).
constexpr size_t kMonitoringThreads = 64;
//! Accepted connections waiting for a thread; past this the accept loop waits.
constexpr size_t kMaxPendingConnections = 4096;

//! Creates `path` (mode 0600, exclusively) holding a new random token.
absl::Status CreateToken(const std::string& path) {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) return absl::InternalError("RAND_bytes failed");
  std::string hex =
      storage::HexOf(absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  hex += "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create monitoring.token_file ", path, ": ", strerror(errno)));
  }
  const bool written = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced) return absl::DataLossError(absl::StrCat("cannot write ", path));
  LOG(INFO) << "created the monitoring token in " << path;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    RDG_RETURN_IF_ERROR(CreateToken(path));
  }
  RDG_ASSIGN_OR_RETURN(std::string text, storage::ReadWholeFile(path, "monitoring.token_file"));
  std::string token(absl::StripAsciiWhitespace(text));
  if (token.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("monitoring.token_file ", path,
                     " holds fewer than 16 characters; use a long random "
                     "token (e.g. openssl rand -hex 32)"));
  }
  return token;
}

bool SameToken(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

//! The value of cookie `name` in a Cookie header, or "".
std::string CookieValue(const std::string& header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::StartsWith(part, name) && part.size() > name.size() && part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
  }
  return "";
}

void Text(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "text/plain; charset=utf-8");
}

//! cpp-httplib serves a connection on one pool thread until the client is idle for the keep-alive
//! timeout or a read stalls for the read timeout; its default pool is 8 threads and 5 s, so 20
//! slowloris clients took every thread. A larger pool, short timeouts and newest-first service
//! keep slow and idle clients from starving /healthz; ranges (unneeded by any monitoring client,
//! and amplifying when many are asked for) are refused.
void Harden(httplib::Server& server) {
  http::ServeNewestFirst(server, kMonitoringThreads, kMaxPendingConnections);
  server.set_read_timeout(2);
  server.set_write_timeout(5);
  server.set_keep_alive_timeout(2);
  server.set_keep_alive_max_count(50);
  server.set_payload_max_length(64 * 1024);
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_header("Range")) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 416;
    res.set_content("byte ranges are not served on the monitoring port\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<MonitoringServer>> MonitoringServer::Start(
    const rdg::v1::MonitoringConfig& config, const rdg::v1::TlsConfig& tls,
    const config::InstitutionDirectory& directory, Handlers handlers) {
  std::unique_ptr<MonitoringServer> m(new MonitoringServer());
  m->directory_ = &directory;
  m->handlers_ = std::move(handlers);
  m->tls_ = config.tls();
  if (!config.token_file().empty()) {
    RDG_ASSIGN_OR_RETURN(m->token_, ReadToken(config.token_file()));
    m->token_name_ = std::string(absl::StripSuffix(
        config.token_file().substr(config.token_file().rfind('/') + 1), ".token"));
  }
  if (!config.token_dir().empty()) {
    RDG_ASSIGN_OR_RETURN(m->admin_tokens_, AdministratorTokens::Load(config.token_dir()));
  }
  std::unique_ptr<httplib::Server> server;
  if (m->tls_) {
    // A client certificate is optional (a token will do) but verified when presented.
    RDG_ASSIGN_OR_RETURN(
        server, http::TlsServer(tls, http::ClientCertificates::kOptional, "the monitoring port"));
  } else {
    server = std::make_unique<httplib::Server>();
  }
  Harden(*server);
  m->server_ = server.get();
  m->Route();
  RDG_ASSIGN_OR_RETURN(m->listening_, http::Listening::Start(std::move(server), config.listen(),
                                                             kListenBacklog, "monitoring"));
  return m;
}

MonitoringServer::MonitoringServer() = default;

MonitoringServer::~MonitoringServer() { listening_.reset(); }

int MonitoringServer::port() const { return listening_->port(); }

MonitoringServer::Caller MonitoringServer::Check(const httplib::Request& req) const {
  Caller c;
  c.peer = http::PeerAddress(req);
  if (tls_) {
    const std::string pem = http::PeerCertificatePem(req);
    if (!pem.empty()) {
      auto who = auth::PrincipalFromCertificate(pem, *directory_);
      c.subject = who.ok() ? who->subject : "";
      if (who.ok()) {
        c.user = who->user;
        c.institution = who->institution;
      }
      if (handlers_.revoked && handlers_.revoked(pem)) {
        c.access = Access::kForbidden;
        c.why = "certificate revoked";
      } else if (!who.ok() || who->role != rdg::v1::ADMIN) {
        c.access = Access::kForbidden;
        c.why =
            who.ok() ? "not an administrator's certificate" : std::string(who.status().message());
      } else {
        c.access = Access::kAllowed;
      }
      return c;
    }
  }
  std::string presented;
  const std::string authorization = req.get_header_value("Authorization");
  if (absl::StartsWithIgnoreCase(authorization, "Bearer ")) {
    presented = std::string(absl::StripAsciiWhitespace(authorization.substr(7)));
  } else {
    presented = CookieValue(req.get_header_value("Cookie"), kCookie);
  }
  if (presented.empty()) {
    c.access = Access::kUnauthenticated;
    c.why = "no credentials";
    return c;
  }
  return Token(presented, std::move(c));
}

MonitoringServer::Caller MonitoringServer::Token(const std::string& presented, Caller c) const {
  if (!token_.empty() && SameToken(presented, token_)) {
    c.user = token_name_;  // the service token (monitoring.token_file), e.g. Prometheus's
    c.access = Access::kAllowed;
    return c;
  }
  if (admin_tokens_ != nullptr) {
    const AdministratorTokens::Match m = admin_tokens_->Find(presented, absl::Now());
    if (m.verdict != AdministratorTokens::Verdict::kUnknown) {
      c.user = m.holder.name;
      c.subject = absl::StrCat("token:", m.holder.name);
      if (m.verdict == AdministratorTokens::Verdict::kValid) {
        c.access = Access::kAllowed;
        c.expires = m.holder.expires;
      } else {
        c.access = Access::kForbidden;
        c.why = absl::StrCat(
            "token expired at ",
            absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *m.holder.expires, absl::UTCTimeZone()));
      }
      return c;
    }
  }
  c.access = Access::kForbidden;
  c.why = "unknown token";
  return c;
}

absl::Status MonitoringServer::Audit(const Caller& c, absl::string_view action) const {
  if (!handlers_.audit) return absl::OkStatus();
  std::string left_out;
  if (c.access != Access::kAllowed) {
    // Per view, presented identity (a known token's holder, a certificate) and address.
    const std::optional<int64_t> count = refusals_.Admit(
        absl::StrCat(action, "|", c.subject, "@", PeerAddress(c.peer)), absl::Now());
    if (!count) return absl::OkStatus();
    left_out = AuditThrottle::LeftOut(*count);
  }
  storage::AuditRecord r;
  r.at = absl::Now();
  r.institution = c.institution;
  r.user = c.user;
  r.role = c.access == Access::kAllowed ? storage::Role::kAdmin : storage::Role::kUnspecified;
  r.action = std::string(action);
  r.peer = c.peer;
  r.subject = c.subject;
  r.outcome = c.access == Access::kAllowed           ? ""
              : c.access == Access::kUnauthenticated ? "UNAUTHENTICATED"
                                                     : "PERMISSION_DENIED";
  r.detail = c.why + left_out;
  return handlers_.audit(r);
}

void MonitoringServer::Route() {
  httplib::Server& s = *server_;
  // Every protected handler goes through this: 401 without credentials, 403 with the wrong ones.
  // Views of figures and of the dashboard (`action`) are audited, allowed or refused; its
  // scripts are not (they hold no data).
  auto guarded = [this](const char* action,
                        std::function<void(const httplib::Request&, httplib::Response&)> body) {
    return [this, action, body](const httplib::Request& req, httplib::Response& res) {
      const Caller caller = Check(req);
      if (action != nullptr) {
        if (absl::Status audited = Audit(caller, action);
            !audited.ok() && caller.access == Access::kAllowed) {
          return Text(res, 503, "not served: its audit record could not be written\n");
        }
      }
      switch (caller.access) {
        case Access::kAllowed:
          res.set_header("Cache-Control", "no-store");
          return body(req, res);
        case Access::kUnauthenticated:
          res.set_header("WWW-Authenticate", "Bearer realm=\"rdg-monitoring\"");
          return Text(res, 401,
                      "credentials required: an administrator's certificate or token "
                      "(Authorization: Bearer ...)\n");
        case Access::kForbidden:
          return Text(res, 403,
                      absl::StrCat("forbidden: administrators only (", caller.why, ")\n"));
      }
    };
  };
  s.Get("/healthz",
        [](const httplib::Request&, httplib::Response& res) { Text(res, 200, "ok\n"); });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const absl::Status ready = handlers_.ready();
    Text(res, ready.ok() ? 200 : 503,
         ready.ok() ? "ready\n" : absl::StrCat("not ready: ", ready.message(), "\n"));
  });
  s.Get("/metrics",
        guarded("view_metrics", [this](const httplib::Request&, httplib::Response& res) {
          auto text = handlers_.metrics();
          if (!text.ok()) return Text(res, 500, absl::StrCat(text.status().message(), "\n"));
          res.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
        }));
  // /dashboard?token=T: a browser has no header to send; the token becomes a cookie (HttpOnly,
  // same site, this port only; it ends when the token expires) and the address bar loses it.
  s.Get("/dashboard", [this, guarded](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("token")) {
      const std::string token = req.get_param_value("token");
      Caller caller = Check(req);
      caller = Token(token, std::move(caller));
      const absl::Status audited = Audit(caller, "dashboard_sign_in");
      if (!audited.ok() && caller.access == Access::kAllowed) {
        return Text(res, 503, "not served: its audit record could not be written\n");
      }
      if (caller.access != Access::kAllowed) {
        return Text(res, 403, absl::StrCat("forbidden: administrators only (", caller.why, ")\n"));
      }
      std::string cookie = absl::StrCat(kCookie, "=", token, "; Path=/; HttpOnly; SameSite=Strict",
                                        tls_ ? "; Secure" : "");
      if (caller.expires) {
        absl::StrAppend(&cookie, "; Max-Age=",
                        std::max<int64_t>(0, absl::ToInt64Seconds(*caller.expires - absl::Now())));
      }
      res.set_header("Set-Cookie", cookie);
      // The page's language choice survives the redirect (only the two it knows).
      const std::string lang = req.get_param_value("lang");
      res.set_redirect(lang == "zh" || lang == "en" ? "/dashboard?lang=" + lang : "/dashboard",
                       303);
      return;
    }
    guarded("view_dashboard", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(DashboardHtml(), "text/html; charset=utf-8");
    })(req, res);
  });
  s.Get("/dashboard/data.json",
        guarded("view_dashboard_data", [this](const httplib::Request&, httplib::Response& res) {
          auto json = handlers_.dashboard_data();
          if (!json.ok()) return Text(res, 500, absl::StrCat(json.status().message(), "\n"));
          res.set_content(*json, "application/json");
        }));
  s.Get("/dashboard/dashboard.js",
        guarded(nullptr, [](const httplib::Request&, httplib::Response& res) {
          res.set_content(DashboardJs(), "text/javascript; charset=utf-8");
        }));
  s.Get("/dashboard/chart.min.js",
        guarded(nullptr, [](const httplib::Request&, httplib::Response& res) {
          res.set_content(ChartJs(), "text/javascript; charset=utf-8");
        }));
}

}  // namespace rdg::monitoring
