// C-STORE SCU (DCMTK DcmSCU) towards a PACS: one association per job, a presentation context per
// SOP class with the transfer syntax each instance has (and Explicit VR Little Endian), each
// instance sent as it is stored — never transcoded. A warning status counts as stored (the PACS
// kept it, e.g. after coercing a value); a refusal of the data set itself (0xA9xx, 0xCxxx, or no
// context accepted for its SOP class) is for good; anything else — no connection, a rejected or
// aborted association, out of resources (0xA7xx), no answer within the timeout — is retried.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/outbound/payloads.h"

namespace rdg::outbound {

//! `identity`: the certificate RDG presents to a PACS with `tls` set (the gateway's own).
SendOutcome SendDicom(const rdg::v1::DicomDestination& destination,
                      const std::vector<DicomObject>& objects, absl::Duration timeout,
                      const rdg::v1::TlsConfig& identity);

}  // namespace rdg::outbound
