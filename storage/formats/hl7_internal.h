// Pieces the HL7 v2 parser (hl7_lab.cc) and the builders (hl7_ack.cc, hl7_report.cc) share:
// delimiters, character sets and rejections. Internal to storage/formats; everything else uses
// hl7_lab.h.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "absl/strings/string_view.h"
#include "storage/formats/hl7_lab.h"

namespace rdg::formats::hl7_internal {

inline constexpr char kStartBlock = '\x0b';  // MLLP frame
inline constexpr char kEndBlock = '\x1c';

Hl7Rejection Ar(absl::string_view error_code, absl::string_view location, std::string reason);
Hl7Rejection Ae(absl::string_view error_code, absl::string_view location, std::string reason);

//! Non-ASCII characters become '?'. With `double_byte`, a lead byte and the byte after it make one
//! character (GB18030's four-byte forms are two such pairs).
std::string AsciiOnly(absl::string_view s, bool double_byte);

enum class CharsetKind { kAscii, kUtf8, kIconv, kUnknown };

struct Charset {
  CharsetKind kind = CharsetKind::kUnknown;
  std::string iconv_name;    //!< for kIconv
  bool double_byte = false;  //!< GB18030/GBK/GB2312/Big5: a trail byte may equal a delimiter
  bool operator==(const Charset&) const = default;
};

//! The character set an MSH-18 value (HL7 table 0211, plus common spellings) names.
Charset LookupCharset(absl::string_view msh18);

struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  std::string encoding = "^~\\&";  //!< MSH-2 as received (4, or 5 with 2.7's truncation char)
};

//! A printable ASCII character that is neither a letter nor a digit.
bool IsDelimiterChar(char c);

//! The delimiters MSH-1 and MSH-2 declare, or why they cannot be used.
std::variant<Delimiters, Hl7Rejection> MakeDelimiters(char field, absl::string_view encoding);

//! Text with the delimiters (and line breaks) written as escape sequences (\F\, \.br\, …).
std::string Escape(absl::string_view text, const Delimiters& d);

//! `s` up to the first `c` (all of it when there is none).
absl::string_view Before(absl::string_view s, char c);

}  // namespace rdg::formats::hl7_internal
