#include "clients/agent/mllp_framing.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rdg::agent {

MllpDeframer::Step MllpDeframer::Take(char c) {
  if (!in_frame_) {
    if (c != kMllpStartBlock) return Step::kNothing;
    in_frame_ = true;
    buffer_.clear();
    return Step::kFrameStarted;
  }
  if (c == kMllpEndBlock) {
    in_frame_ = false;
    return Step::kMessage;
  }
  if (c == kMllpStartBlock) {  // a new frame before the end of the last: drop the torn one
    buffer_.clear();
    return Step::kNothing;
  }
  buffer_ += c;
  if (buffer_.size() > max_message_bytes_) {
    in_frame_ = false;
    return Step::kTooLarge;
  }
  return Step::kNothing;
}

std::string MllpFrame(absl::string_view message) {
  return absl::StrCat(absl::string_view(&kMllpStartBlock, 1), message,
                      absl::string_view(&kMllpEndBlock, 1), "\r");
}

std::optional<formats::Hl7Header> PlainMsh(absl::string_view message) {
  absl::string_view msh = message.substr(0, std::min(message.find_first_of("\r\n"), size_t{4096}));
  if (msh.size() < 8 || !absl::StartsWith(msh, "MSH")) return std::nullopt;
  formats::Hl7Header h;
  h.field_separator = msh[3];
  const std::vector<absl::string_view> f = absl::StrSplit(msh, msh[3]);
  auto field = [&f](size_t n) {  // MSH-n; MSH-1 is the separator itself
    return n - 1 < f.size() ? std::string(f[n - 1]) : std::string();
  };
  if (field(2).size() == 4) h.encoding_characters = field(2);
  h.sending_application = field(3);
  h.sending_facility = field(4);
  h.receiving_application = field(5);
  h.receiving_facility = field(6);
  h.message_time = field(7);
  h.message_type = field(9);
  h.control_id = field(10);
  h.processing_id = field(11);
  h.version = field(12).substr(0, field(12).find(h.encoding_characters[0]));
  h.charset = field(18);
  return h;
}

}  // namespace rdg::agent
