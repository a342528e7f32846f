// Why the gateway closed a connection at the TLS handshake. Under TLS 1.3 the gateway checks a
// client's certificate after the client has sent its last handshake message, so gRPC sees only
// "Socket closed"; reading on with OpenSSL gives the alert the gateway sent (unknown CA,
// certificate revoked or expired, certificate required). rdg-clinic asks this once when an upload
// fails that way, instead of retrying a refusal as if it were a network failure.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"

namespace rdg::clients {

struct ConnectionOptions;

//! Connects to `conn.gateway` with the user's certificate and key, as a gRPC client would (TLS
//! 1.2 or later, ALPN h2, the HTTP/2 preface), and waits for the gateway's first answer, within
//! `timeout` per step. Returns why the gateway refused the handshake: a certificate alert
//! ("… (tlsv1 alert unknown ca) …"); the gateway presenting its certificate and then closing
//! without a word (gRPC's TLS layer drops its alert), seen twice half a second apart; or the
//! gateway's own certificate not from the platform CA. nullopt when the handshake was accepted,
//! timed out, or the gateway could not be reached at all (then the caller's own error stands).
std::optional<std::string> ExplainRefusedHandshake(const ConnectionOptions& conn,
                                                   absl::Duration timeout);

}  // namespace rdg::clients
