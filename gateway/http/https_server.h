// What the gateway's HTTP ports share (the monitoring port, DICOMweb): a cpp-httplib server with
// the gateway's certificate and the platform CA, the verified client certificate of a request,
// a connection queue served newest first, and binding with a real accept backlog on a thread of
// its own. Debian's cpp-httplib (libcpp-httplib-dev) is a compiled library with OpenSSL support.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rdg/v1/config.pb.h"

namespace rdg::http {

enum class ClientCertificates {
  kOptional,  //!< verified when presented (another credential may do)
  kRequired,  //!< the handshake fails without one the platform CA signed
};

//! An HTTPS server with tls.cert_file/key_file, client certificates verified against
//! tls.ca_file, TLS 1.2 or later. INVALID_ARGUMENT naming `what` when the files cannot be used.
absl::StatusOr<std::unique_ptr<httplib::Server>> TlsServer(const rdg::v1::TlsConfig& tls,
                                                           ClientCertificates clients,
                                                           absl::string_view what);

//! PEM of the verified peer certificate of a TLS connection, or "".
std::string PeerCertificatePem(const httplib::Request& req);

//! The caller's address as gRPC names it ("ipv4:10.1.2.3:50122", "ipv6:[::1]:50122").
std::string PeerAddress(const httplib::Request& req);

//! Serves `server`'s connections with `threads` threads, newest waiting connection first, at
//! most `max_pending` waiting (see https_server.cc).
void ServeNewestFirst(httplib::Server& server, size_t threads, size_t max_pending);

//! A server bound and serving on a thread of its own; stopped and joined when destroyed.
class Listening {
 public:
  //! Binds `listen` (HOST:PORT or [V6]:PORT; port 0 picks a free one) with an accept backlog of
  //! `backlog` and starts serving. UNAVAILABLE naming `what` when it cannot bind.
  static absl::StatusOr<std::unique_ptr<Listening>> Start(std::unique_ptr<httplib::Server> server,
                                                          const std::string& listen, int backlog,
                                                          absl::string_view what);
  ~Listening();
  int port() const { return port_; }
  httplib::Server& server() { return *server_; }

 private:
  Listening() = default;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace rdg::http
