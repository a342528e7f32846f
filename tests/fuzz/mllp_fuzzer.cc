// libFuzzer entry point for the edge agent's HL7 receive path before the parser: the input is a
// byte stream as a sender's TCP connection delivers it, deframed as MLLP (clients/agent/
// mllp_framing.h), and every message (or the start of one too large) gets the ACK the agent
// writes itself from a plain read of its MSH. Besides the sanitizers' findings it aborts when
// framing breaks its promises: a message never holds a frame byte, never exceeds the limit, and
// an ACK is always one framed MSH/MSA message. Seeds: tests/fuzz/corpus/mllp/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "clients/agent/mllp_framing.h"
#include "storage/formats/hl7_lab.h"

namespace {

constexpr size_t kMaxMessage = 16 << 10;

void Check(bool ok) {
  if (!ok) std::abort();
}

void Ack(const std::string& message) {
  rdg::formats::Hl7Rejection why{rdg::formats::Hl7AckCode::kReject, "207", "",
                                 "message too large for this receiver"};
  const std::string ack =
      rdg::formats::BuildHl7Ack(rdg::agent::PlainMsh(message), rdg::formats::Hl7AckCode::kReject,
                                &why, absl::FromUnixSeconds(1'800'000'000), "RDGA1");
  Check(absl::StartsWith(ack, "MSH"));
  const std::string framed = rdg::agent::MllpFrame(ack);
  Check(framed.size() == ack.size() + 3 && framed.front() == rdg::agent::kMllpStartBlock);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rdg::agent::MllpDeframer deframer(kMaxMessage);
  for (size_t i = 0; i < size; ++i) {
    const auto step = deframer.Take(static_cast<char>(data[i]));
    if (step == rdg::agent::MllpDeframer::Step::kMessage) {
      const std::string& m = deframer.message();
      Check(m.size() <= kMaxMessage);
      Check(m.find(rdg::agent::kMllpStartBlock) == std::string::npos &&
            m.find(rdg::agent::kMllpEndBlock) == std::string::npos);
      Ack(m);
    } else if (step == rdg::agent::MllpDeframer::Step::kTooLarge) {
      Check(deframer.message().size() == kMaxMessage + 1 && !deframer.in_frame());
      Ack(deframer.message());
      break;  // the listener closes the connection
    }
  }
  return 0;
}
