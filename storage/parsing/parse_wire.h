// What crosses the socket between the gateway and a parser process: ParsedObject and
// absl::Status as rdg.v1.ParseResponse, and length-prefixed frames (4-byte little-endian length,
// then the serialized message) with a deadline on every read.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "rdg/v1/parser.pb.h"
#include "storage/parsing/parsed_object.h"

namespace rdg::parsing {

//! Largest frame either side accepts (a lab message of many results is the largest answer).
inline constexpr uint32_t kMaxFrameBytes = 64u << 20;

//! The response for a parse result (max_rss_bytes left for the caller).
rdg::v1::ParseResponse ToResponse(const absl::StatusOr<parsing::ParsedObject>& result);
//! The parse result a response carries.
absl::StatusOr<parsing::ParsedObject> FromResponse(const rdg::v1::ParseResponse& response);

//! Writes one frame to `fd` (never raises SIGPIPE).
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message);
//! Reads one frame from `fd` into `message`. DEADLINE_EXCEEDED when `deadline` passes first,
//! UNAVAILABLE at end of stream (the peer closed or died), DATA_LOSS for a malformed frame.
absl::Status ReadFrame(int fd, google::protobuf::MessageLite& message, absl::Time deadline);

}  // namespace rdg::parsing
