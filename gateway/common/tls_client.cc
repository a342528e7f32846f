#include "gateway/common/tls_client.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "storage/base/openssl_support.h"

namespace rdg {
namespace {

using SslCtxPtr = std::unique_ptr<SSL_CTX, openssl::Deleter<SSL_CTX, SSL_CTX_free>>;

}  // namespace

struct TlsSession::State {
  TcpConnection tcp;
  openssl::SslPtr ssl;
  std::string where;
};

TlsSession::TlsSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
TlsSession::TlsSession(TlsSession&&) noexcept = default;
TlsSession& TlsSession::operator=(TlsSession&&) noexcept = default;
TlsSession::~TlsSession() = default;

absl::Status TlsSession::Write(absl::string_view data) {
  size_t written = 0;
  if (SSL_write_ex(state_->ssl.get(), data.data(), data.size(), &written) != 1 ||
      written != data.size()) {
    return absl::UnavailableError(
        absl::StrCat(state_->where, ": sending failed: ",
                     errno == EAGAIN ? std::string("timed out") : openssl::OpenSslError()));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> TlsSession::Read(char* buffer, size_t size) {
  size_t read = 0;
  errno = 0;
  if (SSL_read_ex(state_->ssl.get(), buffer, size, &read) == 1) return read;
  const int error = SSL_get_error(state_->ssl.get(), 0);
  if (error == SSL_ERROR_ZERO_RETURN) return size_t{0};
  if (error == SSL_ERROR_WANT_READ || (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return absl::DeadlineExceededError(absl::StrCat(state_->where, ": nothing came in time"));
  }
  return absl::UnavailableError(
      absl::StrCat(state_->where, ": reading failed: ", openssl::OpenSslError()));
}

absl::Status TlsSession::Shutdown() {
  if (SSL_shutdown(state_->ssl.get()) < 0) {
    return absl::UnavailableError(
        absl::StrCat(state_->where, ": closing failed: ", openssl::OpenSslError()));
  }
  return absl::OkStatus();
}

struct TlsClient::Impl {
  SslCtxPtr ctx;
};

TlsClient::TlsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsClient::~TlsClient() = default;

absl::StatusOr<std::unique_ptr<TlsClient>> TlsClient::Create(const TlsClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->ctx.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = impl->ctx.get();
  if (ctx == nullptr) return absl::InternalError(openssl::OpenSslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (options.ca_file.empty() ||
      SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(options.what, " ca_file ", options.ca_file,
                                                   " unusable: ", openssl::OpenSslError()));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(options.what, " certificate ", options.cert_file,
                                                   " / key unusable: ", openssl::OpenSslError()));
  }
  return std::unique_ptr<TlsClient>(new TlsClient(std::move(impl)));
}

absl::StatusOr<TlsSession> TlsClient::Connect(const std::string& host, const std::string& port,
                                              const std::string& server_name,
                                              absl::Duration timeout,
                                              absl::string_view where) const {
  auto state = std::make_unique<TlsSession::State>();
  state->where = std::string(where);
  absl::StatusOr<TcpConnection> tcp = ConnectTcp(host, port, timeout);
  if (!tcp.ok()) return absl::UnavailableError(absl::StrCat(where, ": ", tcp.status().message()));
  state->tcp = *std::move(tcp);
  state->ssl.reset(SSL_new(impl_->ctx.get()));
  SSL* ssl = state->ssl.get();
  if (ssl == nullptr) return absl::InternalError(openssl::OpenSslError());
  // The peer's certificate must name it: as an IP address, or as a DNS name (also SNI).
  if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str()) != 1 &&
      (SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1 ||
       SSL_set1_host(ssl, server_name.c_str()) != 1)) {
    return absl::InternalError(absl::StrCat("cannot check the name ", server_name, " of ", where,
                                            ": ", openssl::OpenSslError()));
  }
  SSL_set_fd(ssl, state->tcp.fd());
  if (SSL_connect(ssl) != 1) {
    return absl::UnavailableError(
        absl::StrCat(where, ": TLS handshake failed: ", openssl::OpenSslError()));
  }
  return TlsSession(std::move(state));
}

}  // namespace rdg
