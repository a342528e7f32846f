// MLLP (HL7 v2 over TCP): <VT> message <FS><CR> framing, and what the agent needs of a message's
// MSH to address an ACK it writes itself. No I/O: the listener (mllp_listener.cc) feeds it the
// bytes a sender sends; the fuzzer (tests/fuzz/mllp_fuzzer.cc) feeds it anything.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "storage/formats/hl7_lab.h"

namespace rdg::agent {

inline constexpr char kMllpStartBlock = '\x0b';
inline constexpr char kMllpEndBlock = '\x1c';

class MllpDeframer {
 public:
  explicit MllpDeframer(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  enum class Step {
    kNothing,       //!< a byte of a message, or between frames (ignored, e.g. the CR after FS)
    kFrameStarted,  //!< <VT>: a message begins
    kMessage,       //!< <FS>: message() is a whole message
    kTooLarge,      //!< the message passed max_message_bytes; message() holds its first bytes
  };
  //! Takes the next byte. A <VT> inside a frame drops the torn message and starts again.
  Step Take(char c);

  bool in_frame() const { return in_frame_; }
  //! The message of the last kMessage/kTooLarge step (or the one being received).
  const std::string& message() const { return buffer_; }

 private:
  const size_t max_message_bytes_;
  bool in_frame_ = false;
  std::string buffer_;
};

//! `message` framed for sending: <VT> message <FS><CR>.
std::string MllpFrame(absl::string_view message);

//! MSH read by splitting the first segment on its field separator — no parser, since the message
//! may be one that just made the parser fail. None when the message does not start with a usable
//! MSH segment.
std::optional<formats::Hl7Header> PlainMsh(absl::string_view message);

}  // namespace rdg::agent
