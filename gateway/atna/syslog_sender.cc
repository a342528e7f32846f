#include "gateway/atna/syslog_sender.h"

#include "absl/strings/str_cat.h"
#include "gateway/common/tls_client.h"
#include "storage/base/status_macros.h"

namespace rdg::atna {
namespace {

//! `text` as an RFC 5424 header field: printable US-ASCII (33-126) only, at most `max` octets,
//! "-" (the nil value) when nothing is left.
std::string HeaderField(absl::string_view text, size_t max) {
  std::string out;
  for (char c : text) {
    if (c >= 33 && c <= 126 && out.size() < max) out.push_back(c);
  }
  return out.empty() ? "-" : out;
}

}  // namespace

std::string SyslogMessage(absl::Time at, absl::string_view host, absl::string_view app, int pid,
                          int64_t sequence_id, absl::string_view msg) {
  // PRI 85 = authpriv (10) * 8 + notice (5). The BOM says the message is UTF-8 (RFC 5424 6.4).
  return absl::StrCat("<85>1 ", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", at, absl::UTCTimeZone()),
                      " ", HeaderField(host, 255), " ", HeaderField(app, 48), " ", pid,
                      " IHE+RFC-3881 [meta sequenceId=\"", sequence_id, "\"] \xEF\xBB\xBF", msg);
}

std::string OctetCountedFrame(absl::string_view message) {
  return absl::StrCat(message.size(), " ", message);
}

struct SyslogTlsSender::Impl {
  SyslogTlsOptions options;
  std::unique_ptr<TlsClient> tls;
};

SyslogTlsSender::SyslogTlsSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SyslogTlsSender::~SyslogTlsSender() = default;

absl::StatusOr<std::unique_ptr<SyslogTlsSender>> SyslogTlsSender::Create(
    const SyslogTlsOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.server_name.empty()) impl->options.server_name = options.host;
  RDG_ASSIGN_OR_RETURN(impl->tls, TlsClient::Create({options.ca_file, options.cert_file,
                                                     options.key_file, "audit_export"}));
  return std::unique_ptr<SyslogTlsSender>(new SyslogTlsSender(std::move(impl)));
}

absl::Status SyslogTlsSender::Deliver(const std::vector<std::string>& frames) {
  const SyslogTlsOptions& o = impl_->options;
  const std::string where = absl::StrCat("audit repository ", o.host, ":", o.port);
  RDG_ASSIGN_OR_RETURN(TlsSession session, impl_->tls->Connect(o.host, absl::StrCat(o.port),
                                                               o.server_name, o.timeout, where));
  for (const std::string& frame : frames) RDG_RETURN_IF_ERROR(session.Write(frame));
  // Our close_notify, then the repository's in answer: everything before it was read.
  RDG_RETURN_IF_ERROR(session.Shutdown());
  char discard[256];
  for (size_t read = 0; read < 64 * 1024;) {
    absl::StatusOr<size_t> n = session.Read(discard, sizeof(discard));
    if (!n.ok()) break;
    if (*n == 0) return absl::OkStatus();
    read += *n;  // nothing is expected; whatever comes is not the confirmation
  }
  return absl::UnavailableError(
      absl::StrCat(where, ": the repository did not confirm the batch (no close_notify)"));
}

}  // namespace rdg::atna
