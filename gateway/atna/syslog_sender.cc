#include "gateway/atna/syslog_sender.h"

#include "absl/strings/str_cat.h"
#include "gateway/common/tcp_connect.h"
#include "storage/base/openssl_support.h"

namespace rdg::atna {
namespace {

using SslCtxPtr = std::unique_ptr<SSL_CTX, openssl::Deleter<SSL_CTX, SSL_CTX_free>>;

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
  SslCtxPtr ctx;
};

SyslogTlsSender::SyslogTlsSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SyslogTlsSender::~SyslogTlsSender() = default;

absl::StatusOr<std::unique_ptr<SyslogTlsSender>> SyslogTlsSender::Create(
    const SyslogTlsOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.server_name.empty()) impl->options.server_name = options.host;
  impl->ctx.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = impl->ctx.get();
  if (ctx == nullptr) return absl::InternalError(openssl::OpenSslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("audit_export ca_file ", options.ca_file,
                                                   " unusable: ", openssl::OpenSslError()));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("audit_export certificate ", options.cert_file,
                                                   " / key unusable: ", openssl::OpenSslError()));
  }
  return std::unique_ptr<SyslogTlsSender>(new SyslogTlsSender(std::move(impl)));
}

absl::Status SyslogTlsSender::Deliver(const std::vector<std::string>& frames) {
  const SyslogTlsOptions& o = impl_->options;
  absl::StatusOr<TcpConnection> connection = ConnectTcp(o.host, absl::StrCat(o.port), o.timeout);
  if (!connection.ok()) {
    return absl::UnavailableError(absl::StrCat("audit repository ", connection.status().message()));
  }
  openssl::SslPtr ssl(SSL_new(impl_->ctx.get()));
  if (!ssl) return absl::InternalError(openssl::OpenSslError());
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  // The repository's certificate must name it: as an IP address, or as a DNS name (also SNI).
  if (X509_VERIFY_PARAM_set1_ip_asc(param, o.server_name.c_str()) != 1 &&
      (SSL_set_tlsext_host_name(ssl.get(), o.server_name.c_str()) != 1 ||
       SSL_set1_host(ssl.get(), o.server_name.c_str()) != 1)) {
    return absl::InternalError(absl::StrCat("cannot check the audit repository's name ",
                                            o.server_name, ": ", openssl::OpenSslError()));
  }
  SSL_set_fd(ssl.get(), connection->fd());
  const std::string where = absl::StrCat("audit repository ", o.host, ":", o.port);
  if (SSL_connect(ssl.get()) != 1) {
    return absl::UnavailableError(
        absl::StrCat(where, ": TLS handshake failed: ", openssl::OpenSslError()));
  }
  for (const std::string& frame : frames) {
    size_t written = 0;
    if (SSL_write_ex(ssl.get(), frame.data(), frame.size(), &written) != 1 ||
        written != frame.size()) {
      return absl::UnavailableError(
          absl::StrCat(where, ": sending failed: ", openssl::OpenSslError()));
    }
  }
  // Our close_notify, then the repository's in answer: everything before it was read.
  if (SSL_shutdown(ssl.get()) < 0) {
    return absl::UnavailableError(
        absl::StrCat(where, ": closing failed: ", openssl::OpenSslError()));
  }
  char discard[256];
  for (size_t read = 0; read < 64 * 1024;) {
    const int n = SSL_read(ssl.get(), discard, sizeof(discard));
    if (n > 0) {  // nothing is expected; whatever comes is not the confirmation
      read += static_cast<size_t>(n);
      continue;
    }
    if (SSL_get_error(ssl.get(), n) == SSL_ERROR_ZERO_RETURN) return absl::OkStatus();
    break;
  }
  return absl::UnavailableError(
      absl::StrCat(where, ": the repository did not confirm the batch (no close_notify)"));
}

}  // namespace rdg::atna
