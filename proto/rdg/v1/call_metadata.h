// Metadata keys of the API that are not messages: what the gateway attaches to calls and clients
// read. Part of the wire contract like the .proto files beside this header.
#pragma once

namespace rdg::v1 {

//! Trailing metadata on every IngestService.Upload the gateway's upload handler ends (value "1"),
//! whatever the status. A failed upload without it ended on the way: the connection broke, the
//! gateway died, or gRPC itself refused the call. The edge agent counts such losses after it
//! asked for the commit to find objects the gateway fails on (see agent_config.proto,
//! Forwarder.quarantine_after).
inline constexpr char kAnsweredByGatewayKey[] = "rdg-answered-by-gateway";

}  // namespace rdg::v1
