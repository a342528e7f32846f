#include "gateway/dicomweb/multipart_reader.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rdg::dicomweb {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;

}  // namespace

MultipartReader::MultipartReader(absl::string_view boundary, Callbacks callbacks)
    : delimiter_(absl::StrCat("\r\n--", boundary)), callbacks_(std::move(callbacks)) {
  // The first delimiter may open the body without a CRLF before it: read as if there were one.
  buffer_ = "\r\n";
}

bool MultipartReader::Fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  return false;
}

bool MultipartReader::Feed(absl::string_view data) {
  if (state_ == State::kFailed) return false;
  if (state_ == State::kDone) return true;  // the epilogue is ignored
  buffer_.append(data.data(), data.size());
  while (Step()) {
  }
  return state_ != State::kFailed;
}

bool MultipartReader::Step() {
  switch (state_) {
    case State::kPreamble: {
      const size_t at = buffer_.find(delimiter_);
      if (at == std::string::npos) {
        // Keep what could be the start of a delimiter; the rest is preamble.
        if (buffer_.size() > delimiter_.size())
          buffer_.erase(0, buffer_.size() - delimiter_.size());
        if (buffer_.size() > kMaxHeaderBytes) return Fail("no multipart boundary in the body");
        return false;
      }
      buffer_.erase(0, at + delimiter_.size());
      state_ = State::kAfterDelimiter;
      return true;
    }
    case State::kAfterDelimiter: {
      if (buffer_.size() < 2) return false;
      if (absl::StartsWith(buffer_, "--")) {
        state_ = State::kDone;
        buffer_.clear();
        return false;
      }
      const size_t eol = buffer_.find("\r\n");
      if (eol == std::string::npos) {
        if (buffer_.size() > 256) return Fail("a multipart delimiter line does not end");
        return false;
      }
      if (!absl::StripAsciiWhitespace(absl::string_view(buffer_).substr(0, eol)).empty()) {
        return Fail("text after a multipart delimiter");
      }
      buffer_.erase(0, eol + 2);
      state_ = State::kHeaders;
      return true;
    }
    case State::kHeaders: {
      // A part without headers starts with the empty line at once.
      size_t end = absl::StartsWith(buffer_, "\r\n") ? 0 : buffer_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (buffer_.size() > kMaxHeaderBytes) return Fail("a part's headers exceed 16 KiB");
        return false;
      }
      std::map<std::string, std::string> headers;
      for (absl::string_view line :
           absl::StrSplit(absl::string_view(buffer_).substr(0, end), "\r\n", absl::SkipEmpty())) {
        const size_t colon = line.find(':');
        if (colon == absl::string_view::npos) return Fail("a part's header line has no ':'");
        headers[absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)))] =
            std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
      buffer_.erase(0, end == 0 ? 2 : end + 4);
      if (!callbacks_.begin_part(headers)) return Fail("refused");
      state_ = State::kBody;
      return true;
    }
    case State::kBody: {
      const size_t at = buffer_.find(delimiter_);
      if (at == std::string::npos) {
        // Everything but a possible start of the delimiter belongs to the part.
        if (buffer_.size() >= delimiter_.size()) {
          const size_t n = buffer_.size() - (delimiter_.size() - 1);
          if (!callbacks_.part_data(absl::string_view(buffer_).substr(0, n))) {
            return Fail("refused");
          }
          buffer_.erase(0, n);
        }
        return false;
      }
      if (at > 0 && !callbacks_.part_data(absl::string_view(buffer_).substr(0, at))) {
        return Fail("refused");
      }
      buffer_.erase(0, at + delimiter_.size());
      if (!callbacks_.end_part()) return Fail("refused");
      state_ = State::kAfterDelimiter;
      return true;
    }
    case State::kDone:
    case State::kFailed:
      return false;
  }
  return false;
}

std::string ParameterOf(absl::string_view content_type, absl::string_view name) {
  std::vector<absl::string_view> pieces = absl::StrSplit(content_type, ';');
  for (size_t i = 1; i < pieces.size(); ++i) {
    absl::string_view p = absl::StripAsciiWhitespace(pieces[i]);
    const size_t eq = p.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(p.substr(0, eq)), name)) continue;
    absl::string_view value = absl::StripAsciiWhitespace(p.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return "";
}

std::string BoundaryOf(absl::string_view content_type) {
  return ParameterOf(content_type, "boundary");
}

std::string MediaTypeOf(absl::string_view content_type) {
  return absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
}

}  // namespace rdg::dicomweb
