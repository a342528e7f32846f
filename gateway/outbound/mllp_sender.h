// HL7 v2 over MLLP towards a HIS/LIS: one connection per message, the message framed as
// <VT> message <FS><CR>, and its ACK awaited. MSA-1 AA/CA: sent (the ACK recorded as the job's
// detail); AE/CE (an application error at the HIS): retried; AR/CR (rejected): for good. No
// connection, no ACK within the timeout, or an ACK that does not answer the message: retried.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/outbound/payloads.h"

namespace rdg::outbound {

SendOutcome SendMllp(const std::string& address, absl::string_view message, absl::Duration timeout);

//! What an ACK says of the message with control id `control_id` (the pure part of SendMllp).
SendOutcome ReadAck(absl::string_view ack, absl::string_view control_id);

}  // namespace rdg::outbound
