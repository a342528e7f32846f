// MLLP framing as the agent's HL7 listener applies it, and the MSH its own ACKs are addressed by.
#include "clients/agent/mllp_framing.h"

#include <gtest/gtest.h>

#include <vector>

namespace rdg::agent {
namespace {

//! The messages `bytes` holds, and whether it ended with a message too large.
std::vector<std::string> Messages(const std::string& bytes, size_t max = 1 << 20,
                                  bool* too_large = nullptr) {
  MllpDeframer d(max);
  std::vector<std::string> out;
  for (char c : bytes) {
    const MllpDeframer::Step step = d.Take(c);
    if (step == MllpDeframer::Step::kMessage) out.push_back(d.message());
    if (step == MllpDeframer::Step::kTooLarge) {
      if (too_large != nullptr) *too_large = true;
      break;
    }
  }
  return out;
}

TEST(MllpFramingTest, FramesBetweenNoiseAndTornFramesAreHandledAsTheListenerDid) {
  const std::string a = "MSH|^~\\&|LIS|LAB|RDG|AGENT|20261130||ORU^R01|1|P|2.5\rPID|1";
  EXPECT_EQ(Messages(MllpFrame(a) + MllpFrame("second")), (std::vector<std::string>{a, "second"}));
  // Bytes between frames are ignored; a <VT> inside a frame drops the torn message.
  EXPECT_EQ(Messages("noise\r" + std::string(1, kMllpStartBlock) + "torn" + MllpFrame("whole")),
            std::vector<std::string>{"whole"});
  // A frame never ended yields nothing.
  EXPECT_TRUE(Messages(std::string(1, kMllpStartBlock) + "never ends").empty());
  EXPECT_EQ(MllpFrame("x"), std::string("\x0bx\x1c\r"));
}

TEST(MllpFramingTest, AMessageOverTheLimitStopsAtTheFirstByteTooMany) {
  bool too_large = false;
  MllpDeframer d(4);
  std::vector<MllpDeframer::Step> steps;
  for (char c : std::string("\x0b"
                            "12345"))
    steps.push_back(d.Take(c));
  EXPECT_EQ(steps.back(), MllpDeframer::Step::kTooLarge);
  EXPECT_EQ(d.message(), "12345");
  EXPECT_FALSE(d.in_frame());
  EXPECT_TRUE(Messages(MllpFrame("12345"), 4, &too_large).empty());
  EXPECT_TRUE(too_large);
  EXPECT_EQ(Messages(MllpFrame("1234"), 4), std::vector<std::string>{"1234"});
}

TEST(MllpFramingTest, PlainMshReadsTheFieldsAnAckNeedsWhateverTheSeparators) {
  auto h = PlainMsh("MSH#@~\\&#LIS#LAB#RDG#AGENT#20261130##ORU@R01#ctl-7#P#2.5@CHN####\rOBX");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->field_separator, '#');
  EXPECT_EQ(h->encoding_characters, "@~\\&");
  EXPECT_EQ(h->sending_application, "LIS");
  EXPECT_EQ(h->message_type, "ORU@R01");
  EXPECT_EQ(h->control_id, "ctl-7");
  EXPECT_EQ(h->version, "2.5");
  for (const char* not_msh : {"", "MSH|", "PID|1|2|3|4", "MSH\r|^~\\&|A"}) {
    EXPECT_FALSE(PlainMsh(not_msh).has_value()) << not_msh;
  }
}

}  // namespace
}  // namespace rdg::agent
