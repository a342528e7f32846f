// libFuzzer entry point for the HL7 v2 lab parser: the input is split like a clinic's file, each
// message is parsed, and each outcome is answered with an ACK, as the gateway does. Besides the
// sanitizers' findings, it aborts when an outcome breaks the API's promises (exactly one of
// message and rejection; a message always has its header and an order; an ACK is MSH, MSA and,
// when rejected, ERR). Seeds: tests/fuzz/corpus/hl7/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/formats/hl7_lab.h"

namespace {

using rdg::formats::Hl7AckCode;

void Check(bool ok) {
  if (!ok) std::abort();
}

void ParseAndAck(absl::string_view bytes) {
  const rdg::formats::LabParseOutcome out = rdg::formats::ParseLabMessage(bytes);
  Check(out.message.has_value() != out.rejection.has_value());
  if (out.message.has_value()) {
    Check(out.header.has_value() && !out.message->orders.empty());
    Check(out.message->header.control_id == out.header->control_id);
  } else {
    Check(!out.rejection->error_code.empty() && !out.rejection->reason.empty());
  }
  const Hl7AckCode code = out.message.has_value() ? Hl7AckCode::kAccept : out.rejection->code;
  const rdg::formats::Hl7Rejection* why = out.rejection ? &*out.rejection : nullptr;
  const std::string ack =
      rdg::formats::BuildHl7Ack(out.header, code, why, absl::FromUnixSeconds(1795000000), "F1");
  Check(absl::StartsWith(ack, "MSH") && absl::EndsWith(ack, "\r"));
  Check(absl::StrContains(ack, "\rMSA") && absl::StrContains(ack, "\rERR") == (why != nullptr));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const std::string& message : rdg::formats::SplitHl7Messages(bytes)) ParseAndAck(message);
  ParseAndAck(bytes);  // the whole input as one message too: framing and junk around it
  return 0;
}
