// HL7 v2 over MLLP towards a HIS/LIS: one connection per message, the message framed as
// <VT> message <FS><CR>, and its ACK awaited. MSA-1 AA/CA: sent (the ACK recorded as the job's
// detail); AE/CE (an application error at the HIS): retried; AR/CR (rejected): for good. No
// connection, no ACK within the timeout, or an ACK that does not answer the message: retried.
// With hl7.tls, the connection is TLS (tls_client.h): the HIS's certificate must chain to
// hl7.ca_file and name hl7.server_name; a handshake that fails is retried like no connection.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/outbound/payloads.h"
#include "rdg/v1/config.pb.h"

namespace rdg::outbound {

//! Over TLS when destination.tls, with the gateway's certificate from `identity`.
SendOutcome SendMllp(const rdg::v1::Hl7Destination& destination, absl::string_view message,
                     absl::Duration timeout, const rdg::v1::TlsConfig& identity);

//! What an ACK says of the message with control id `control_id` (the pure part of SendMllp).
SendOutcome ReadAck(absl::string_view ack, absl::string_view control_id);

}  // namespace rdg::outbound
