// A multipart/related body (RFC 2046, RFC 2387) split into its parts as it arrives, for STOW-RS:
// each part's headers, then its bytes in pieces — a part is never held in memory whole. Fed any
// split of the body (a byte at a time as well as all at once).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace rdg::dicomweb {

class MultipartReader {
 public:
  struct Callbacks {
    //! A part begins; header names in lower case. False: stop (Feed fails).
    std::function<bool(const std::map<std::string, std::string>& headers)> begin_part;
    std::function<bool(absl::string_view data)> part_data;
    std::function<bool()> end_part;
  };
  MultipartReader(absl::string_view boundary, Callbacks callbacks);

  //! The next bytes of the body. False when the body is malformed (error() says how) or a
  //! callback said stop; nothing more is read then.
  bool Feed(absl::string_view data);
  //! Whether the closing delimiter was read.
  bool finished() const { return state_ == State::kDone; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeaders, kBody, kDone, kFailed };
  bool Fail(std::string why);
  bool Step();  //!< one transition on buffer_; false when it needs more bytes or failed

  const std::string delimiter_;  //!< CRLF "--" boundary
  Callbacks callbacks_;
  State state_ = State::kPreamble;
  std::string buffer_;
  std::string error_;
};

//! The `boundary` parameter of a Content-Type value, unquoted; empty when there is none.
std::string BoundaryOf(absl::string_view content_type);
//! The media type of a Content-Type value, lower case, without parameters.
std::string MediaTypeOf(absl::string_view content_type);
//! A parameter of a Content-Type value (e.g. "type"), unquoted; empty when absent.
std::string ParameterOf(absl::string_view content_type, absl::string_view name);

}  // namespace rdg::dicomweb
