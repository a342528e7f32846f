// HL7 v2 ORU^R01 parsing and validation (see hl7_lab.h; ACKs and splitting are in hl7_ack.cc).
//
// Hand-written on purpose: Debian 12 packages no C++ HL7 v2 library, and the part of the grammar
// needed here (delimiters from MSH, escape sequences, a handful of segments) is small. Every step
// is one linear pass over the text, without recursion, so the cost follows the message size.
//
// Character sets: MSH-18 is read from the raw bytes, then the WHOLE message is converted to UTF-8
// with glibc iconv before anything is split. GB18030, GBK and Big5 trail bytes include '|' (0x7C),
// '^' (0x5E), '~' (0x7E) and '\' (0x5C): splitting first would cut characters in half.
#include "storage/formats/hl7_lab.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <utility>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "storage/formats/hl7_internal.h"
#include "storage/formats/text.h"

namespace rdg::formats {
namespace hl7_internal {

Hl7Rejection Ar(absl::string_view error_code, absl::string_view location, std::string reason) {
  return {Hl7AckCode::kReject, std::string(error_code), std::string(location), std::move(reason)};
}

Hl7Rejection Ae(absl::string_view error_code, absl::string_view location, std::string reason) {
  return {Hl7AckCode::kError, std::string(error_code), std::string(location), std::move(reason)};
}

//! Non-ASCII characters become '?'. With `double_byte`, a lead byte and the byte after it make one
//! character (GB18030's four-byte forms are two such pairs).
std::string AsciiOnly(absl::string_view s, bool double_byte) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += s[i];
      continue;
    }
    out += '?';
    if (double_byte && c >= 0x81 && c <= 0xFE) ++i;
  }
  return out;
}

//! The character set an MSH-18 value (HL7 table 0211, plus common spellings) names.
Charset LookupCharset(absl::string_view msh18) {
  const std::string name = absl::StrReplaceAll(
      absl::AsciiStrToUpper(absl::StripAsciiWhitespace(msh18)), {{" ", ""}, {"_", "-"}});
  if (name.empty() || name == "ASCII" || name == "US-ASCII") return {CharsetKind::kAscii, ""};
  if (name == "UNICODEUTF-8" || name == "UTF-8" || name == "UTF8") return {CharsetKind::kUtf8, ""};
  absl::string_view part = name;
  if (absl::ConsumePrefix(&part, "8859/") && !part.empty() && part.size() <= 2 &&
      std::all_of(part.begin(), part.end(), absl::ascii_isdigit) && part != "0" && part != "12") {
    return {CharsetKind::kIconv, absl::StrCat("ISO-8859-", part)};
  }
  // The double-byte sets: their trail bytes can equal a delimiter.
  const bool gb18030 = name == "GB18030" || name == "GB18030-2000" || name == "GB18030-2005";
  const bool gb2312 = name == "GB2312" || name == "GB2312-80" || name == "GB2312-1980";
  const char* iconv_name = gb18030                             ? "GB18030"
                           : gb2312                            ? "GB2312"
                           : name == "GBK" || name == "CP936"  ? "GBK"
                           : name == "BIG5" || name == "BIG-5" ? "BIG5"
                                                               : nullptr;
  if (iconv_name == nullptr) return {};
  return {CharsetKind::kIconv, iconv_name, true};
}

bool IsDelimiterChar(char c) { return c > 0x20 && c < 0x7F && !absl::ascii_isalnum(c); }

//! The delimiters MSH-1 and MSH-2 declare, or why they cannot be used.
std::variant<Delimiters, Hl7Rejection> MakeDelimiters(char field, absl::string_view encoding) {
  if (!IsDelimiterChar(field)) return Ar("102", "MSH^1^1", "MSH-1 is not a usable separator");
  bool ok = encoding.size() == 4 || encoding.size() == 5;
  for (size_t i = 0; ok && i < encoding.size(); ++i) {
    ok = IsDelimiterChar(encoding[i]) && encoding[i] != field &&
         encoding.find(encoding[i], i + 1) == absl::string_view::npos;
  }
  if (!ok) return Ar("102", "MSH^1^2", "MSH-2 does not hold four distinct encoding characters");
  return Delimiters{field,       encoding[0], encoding[1],
                    encoding[2], encoding[3], std::string(encoding)};
}

absl::string_view Before(absl::string_view s, char c) { return s.substr(0, s.find(c)); }

}  // namespace hl7_internal

namespace {

using hl7_internal::Ae;
using hl7_internal::Ar;
using hl7_internal::AsciiOnly;
using hl7_internal::Before;
using hl7_internal::Charset;
using hl7_internal::CharsetKind;
using hl7_internal::Delimiters;
using hl7_internal::IsDelimiterChar;
using hl7_internal::kEndBlock;
using hl7_internal::kStartBlock;
using hl7_internal::LookupCharset;
using hl7_internal::MakeDelimiters;

constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr std::array<absl::string_view, 5> kVersions = {"2.3", "2.3.1", "2.4", "2.5", "2.5.1"};
//! A lab panel is tens of segments; a message of more is refused (AR) before it is read.
constexpr size_t kMaxSegments = 10000;

// --- Rejections ----------------------------------------------------------------------------------

LabParseOutcome Rejected(std::optional<Hl7Header> header, Hl7Rejection why) {
  return {std::move(header), std::nullopt, std::move(why)};
}

//! Printable ASCII, at most `max` characters: for the sender's own codes (message type, version,
//! charset name) quoted in a reason. Never used on patient fields.
std::string Printable(absl::string_view s, size_t max = 24) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7F) ? c : '?';
  return out;
}

// --- Bytes and character sets --------------------------------------------------------------------

std::string Stripped(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

std::optional<std::string> ToUtf8(absl::string_view raw, const Charset& cs) {
  if (cs.kind == CharsetKind::kIconv) return Iconv(raw, "UTF-8", cs.iconv_name.c_str());
  if (cs.kind == CharsetKind::kUnknown || !IsValidUtf8(raw)) return std::nullopt;
  return std::string(raw);
}

// --- Delimiters, segments and escapes ------------------------------------------------------------

std::variant<Delimiters, Hl7Rejection> ReadDelimiters(absl::string_view msh) {
  if (msh.size() < 4) {
    return Ar("102", "MSH^1^1", "the MSH segment is too short to hold its delimiters");
  }
  const absl::string_view rest = msh.substr(4);
  return MakeDelimiters(msh[3], rest.substr(0, rest.find(msh[3])));
}

//! MSH-n of a raw (unconverted) MSH segment. With `step_over_trail`, the byte after a lead byte
//! (0x81-0xFE) is skipped, which keeps the double-byte charsets' trail bytes out of the count.
absl::string_view RawMshField(absl::string_view msh, char sep, int n, bool step_over_trail) {
  int field = 2;  // MSH-2 starts after "MSH" and MSH-1
  size_t start = 4;
  for (size_t i = 4; i < msh.size(); ++i) {
    const auto c = static_cast<unsigned char>(msh[i]);
    if (step_over_trail && c >= 0x81 && c <= 0xFE) {
      ++i;
      continue;
    }
    if (msh[i] != sep) continue;
    if (field == n) return msh.substr(start, i - start);
    ++field;
    start = i + 1;
  }
  return field == n ? msh.substr(std::min(start, msh.size())) : absl::string_view();
}

//! MSH-18 read from the raw bytes, before conversion. The fields ahead of it are ASCII in
//! practice, but a facility named in GB18030 may hold a trail byte equal to '|': the stepping
//! reading is preferred when it finds a double-byte charset (right for those, and only those).
Charset DetectCharset(absl::string_view raw_msh, const Delimiters& d) {
  auto read = [&](bool step) {
    return LookupCharset(Before(RawMshField(raw_msh, d.field, 18, step), d.repetition));
  };
  const Charset plain = read(false);
  if (std::none_of(raw_msh.begin(), raw_msh.end(), [](char c) { return (c & 0x80) != 0; })) {
    return plain;
  }
  Charset stepped = read(true);
  return stepped.double_byte ? stepped : plain;
}

//! The message without MLLP framing, byte order mark and surrounding whitespace.
absl::string_view StripFraming(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);  // also drops 0x0B, which is a vertical tab
  absl::ConsumePrefix(&s, absl::string_view(&kStartBlock, 1));
  s = s.substr(0, s.find(kEndBlock));
  s = absl::StripAsciiWhitespace(s);
  absl::ConsumePrefix(&s, kUtf8Bom);
  return absl::StripAsciiWhitespace(s);
}

//! Segments split on "\r", "\n" or both; blank lines dropped.
std::vector<absl::string_view> SplitSegments(absl::string_view text) {
  std::vector<absl::string_view> out;
  for (absl::string_view line : absl::StrSplit(text, absl::ByAnyChar("\r\n"))) {
    if (!absl::StripAsciiWhitespace(line).empty()) out.push_back(line);
  }
  return out;
}

bool HasSegmentName(absl::string_view line) {
  auto ok = [](char c) { return absl::ascii_isupper(c) || absl::ascii_isdigit(c); };
  return line.size() >= 3 && ok(line[0]) && ok(line[1]) && ok(line[2]);
}

//! One segment's fields: Field(n) is field n as HL7 numbers it (MSH-1 is the separator itself).
struct Segment {
  std::vector<absl::string_view> fields;
  absl::string_view name() const { return fields[0]; }
  absl::string_view Field(size_t n) const { return n < fields.size() ? fields[n] : ""; }
};

Segment SplitSegment(absl::string_view line, char sep, bool is_msh) {
  Segment s;
  s.fields = absl::StrSplit(line, sep);
  if (is_msh) s.fields.insert(s.fields.begin() + 1, line.substr(3, 1));
  return s;
}

//! Splits fields into repetitions and components, and decodes escape sequences (after
//! splitting, which is the point of escaping).
class Codec {
 public:
  Codec(const Delimiters& d, const Charset& cs) : d_(d), cs_(cs) {}
  const Delimiters& delimiters() const { return d_; }

  std::vector<absl::string_view> Repetitions(absl::string_view field) const {
    return absl::StrSplit(field, d_.repetition);
  }
  //! Components of a repetition (raw), at least `min_count` of them.
  std::vector<absl::string_view> Components(absl::string_view rep, size_t min_count = 0) const {
    std::vector<absl::string_view> parts = absl::StrSplit(rep, d_.component);
    if (parts.size() < min_count) parts.resize(min_count);
    return parts;
  }
  //! Component n (1-based) of the field's first repetition, decoded, whitespace trimmed.
  std::string Component(absl::string_view field, size_t n) const {
    const std::vector<absl::string_view> parts = Components(Before(field, d_.repetition), n);
    return Stripped(Decode(parts[n - 1]));
  }
  //! A repetition's components decoded and joined with '^', trailing empty ones dropped.
  std::string Joined(absl::string_view rep) const {
    std::vector<std::string> parts;
    for (absl::string_view part : Components(rep)) parts.push_back(Decode(part));
    while (!parts.empty() && parts.back().empty()) parts.pop_back();
    return absl::StrJoin(parts, "^");
  }
  std::string Decode(absl::string_view raw) const;

 private:
  std::optional<std::string> DecodeEscape(absl::string_view body) const;

  Delimiters d_;
  Charset cs_;
};

std::string Codec::Decode(absl::string_view raw) const {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    const size_t open = raw.find(d_.escape, i);
    const size_t close = open == raw.npos ? raw.npos : raw.find(d_.escape, open + 1);
    if (close == raw.npos) {  // no (complete) escape sequence left
      absl::StrAppend(&out, raw.substr(i));
      break;
    }
    absl::StrAppend(&out, raw.substr(i, open - i));
    std::optional<std::string> decoded = DecodeEscape(raw.substr(open + 1, close - open - 1));
    if (decoded.has_value()) {
      out += *decoded;
    } else {
      absl::StrAppend(&out, raw.substr(open, close - open + 1));  // kept as received
    }
    i = close + 1;
  }
  // A NUL (sent as is, or as \X00\) ends a C string: no stored text may hold one.
  return absl::StrReplaceAll(out, {{absl::string_view("\0", 1), "\xEF\xBF\xBD"}});
}

std::optional<std::string> Codec::DecodeEscape(absl::string_view body) const {
  static constexpr absl::string_view kCodes = "FSTRE";
  const std::string chars = {d_.field, d_.component, d_.subcomponent, d_.repetition, d_.escape};
  const size_t k = body.size() == 1 ? kCodes.find(body[0]) : kCodes.npos;
  if (k != kCodes.npos) return std::string(1, chars[k]);
  if (body == "P" && d_.encoding.size() == 5) return std::string(1, d_.encoding[4]);  // truncation
  if (body == "H" || body == "N") return std::string();  // highlighting on / off: plain text
  if (body == ".br") return std::string("\n");
  if (body.size() >= 3 && body[0] == 'X' && body.size() % 2 == 1 &&
      std::all_of(body.begin() + 1, body.end(), absl::ascii_isxdigit)) {
    // Bytes in the message's own charset: converted like the rest of the text.
    return ToUtf8(absl::HexStringToBytes(body.substr(1)), cs_);
  }
  return std::nullopt;  // \Cxxyy\, \.sp\ and the like: kept as received
}

// --- OBX values ----------------------------------------------------------------------------------

struct ObxValue {
  std::string text;
  std::optional<double> numeric;
};

//! An HL7 NM: optional sign, digits, at most one decimal point (no exponent).
std::optional<double> ParseNumber(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);
  const absl::string_view body = s.substr(!s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0);
  const auto dots = static_cast<size_t>(std::count(body.begin(), body.end(), '.'));
  double value = 0;
  if (body.size() == dots || dots > 1 || body.find_first_not_of(".0123456789") != body.npos ||
      !absl::SimpleAtod(s, &value) || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

//! SN: comparator ^ number ^ separator/suffix ^ number, e.g. "<^5", "^1^-^5", ">=^100".
std::optional<ObxValue> ReadStructuredNumeric(const Codec& c, absl::string_view rep) {
  const std::vector<absl::string_view> parts = c.Components(rep, 4);
  std::array<std::string, 4> v;
  for (size_t i = 0; i < 4; ++i) v[i] = Stripped(c.Decode(parts[i]));
  const auto& [comparator, n1, separator, n2] = v;
  static constexpr std::array<absl::string_view, 7> kComparators = {"",   "=",  "<", ">",
                                                                    "<=", ">=", "<>"};
  static constexpr std::array<absl::string_view, 6> kSeparators = {"", "-", "+", "/", ".", ":"};
  const bool ok =
      std::find(kComparators.begin(), kComparators.end(), comparator) != kComparators.end() &&
      std::find(kSeparators.begin(), kSeparators.end(), separator) != kSeparators.end() &&
      (n1.empty() || ParseNumber(n1)) && (n2.empty() || ParseNumber(n2));
  if (!ok) return std::nullopt;
  ObxValue out;
  out.text = absl::StrCat(comparator, n1, separator, n2);
  if ((comparator.empty() || comparator == "=") && separator.empty() && n2.empty() && !n1.empty()) {
    out.numeric = ParseNumber(n1);
  }
  return out;
}

//! CE/CWE/CNE: "text (identifier)", or whichever is present; the alternate code otherwise.
std::string CodedText(const Codec& c, absl::string_view rep) {
  const std::vector<absl::string_view> parts = c.Components(rep, 6);
  for (size_t base : {0, 3}) {
    const std::string id(absl::StripAsciiWhitespace(c.Decode(parts[base])));
    const std::string text(absl::StripAsciiWhitespace(c.Decode(parts[base + 1])));
    if (!id.empty() && !text.empty()) return absl::StrCat(text, " (", id, ")");
    if (!id.empty() || !text.empty()) return id + text;
  }
  return "";
}

//! OBX-5 by its value type; nullopt when it does not hold that type (no value in the reason).
std::optional<ObxValue> ReadValue(const Codec& c, absl::string_view type, absl::string_view field) {
  const bool coded = type == "CE" || type == "CWE" || type == "CNE" || type == "CF";
  std::vector<std::string> shown;
  std::optional<double> numeric;
  for (absl::string_view rep : c.Repetitions(field)) {
    ObxValue one;
    if (type == "NM") {
      one.text = Stripped(c.Decode(rep));
      one.numeric = ParseNumber(one.text);
      if (!one.text.empty() && !one.numeric.has_value()) return std::nullopt;
    } else if (type == "SN") {
      std::optional<ObxValue> sn = ReadStructuredNumeric(c, rep);
      if (!sn) return std::nullopt;
      one = std::move(*sn);
    } else {
      one.text = coded ? CodedText(c, rep) : c.Joined(rep);
    }
    if (one.text.empty()) continue;
    shown.push_back(std::move(one.text));
    numeric = one.numeric;
  }
  ObxValue out;
  out.text = absl::StrJoin(shown, "; ");
  if (shown.size() == 1) out.numeric = numeric;
  return out;
}

// --- Message structure ---------------------------------------------------------------------------

//! A \X…\ escape whose body is not pairs of hex digits: the bytes it stands for are unknown, so
//! the text cannot be read as sent. (Other unknown escapes are kept as received, as HL7 allows.)
bool HasBrokenHexEscape(absl::string_view line, char escape) {
  size_t open = line.find(escape);
  while (open != line.npos) {
    const size_t close = line.find(escape, open + 1);
    if (close == line.npos) return false;
    const absl::string_view body = line.substr(open + 1, close - open - 1);
    if (!body.empty() && body[0] == 'X') {
      const absl::string_view hex = body.substr(1);
      if (hex.empty() || hex.size() % 2 != 0 ||
          !std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit)) {
        return true;
      }
    }
    open = line.find(escape, close + 1);
  }
  return false;
}

//! Reads the segments after MSH into a LabMessage, checking order and required fields.
class OruReader {
 public:
  explicit OruReader(const Codec& codec) : codec_(codec) {}
  //! `index` is the 1-based position of the segment in the message (for reasons).
  std::optional<Hl7Rejection> Read(absl::string_view line, size_t index);
  std::variant<LabMessage, Hl7Rejection> Finish() &&;

 private:
  //! Where an NTE belongs: the segment group it follows.
  enum class Context { kOther, kOrder, kObservation };

  std::optional<Hl7Rejection> ReadPid(const Segment& s, const std::string& loc);
  std::optional<Hl7Rejection> ReadObr(const Segment& s, const std::string& loc);
  std::optional<Hl7Rejection> ReadObx(const Segment& s, const std::string& loc);
  std::optional<Hl7Rejection> ReadNte(const Segment& s);  //!< never rejects

  const Codec& codec_;
  LabMessage message_;
  bool has_pid_ = false;
  std::optional<std::pair<std::string, std::string>> orc_;  //!< placer, filler of a pending ORC
  Context context_ = Context::kOther;
  std::map<std::string, int, std::less<>> seen_ = {{"MSH", 1}};  //!< name -> count so far
};

std::optional<Hl7Rejection> OruReader::Read(absl::string_view line, size_t index) {
  const char sep = codec_.delimiters().field;
  if (!HasSegmentName(line) || (line.size() > 3 && line[3] != sep)) {
    return Ae("100", "", absl::StrCat("segment ", index, " is not a valid HL7 segment"));
  }
  const Segment s = SplitSegment(line, sep, false);
  auto it = seen_.try_emplace(std::string(s.name()), 0).first;
  const std::string loc = absl::StrCat(s.name(), "^", ++it->second);
  if (HasBrokenHexEscape(line, codec_.delimiters().escape)) {
    return Ae("102", loc, "a broken escape sequence: \\X must be followed by pairs of hex digits");
  }
  if (s.name() == "PID") return ReadPid(s, loc);
  if (s.name() == "OBR") return ReadObr(s, loc);
  if (s.name() == "OBX") return ReadObx(s, loc);
  if (s.name() == "NTE") return ReadNte(s);
  if (s.name() == "MSH") return Ae("100", loc, "a second MSH segment: one message per upload");
  context_ = Context::kOther;  // SFT, PD1, PV2, CTD, SPM, TQ1, Z-segments...: skipped
  if (s.name() == "PV1") {
    message_.patient_class = codec_.Component(s.Field(2), 1);
    message_.visit_number = codec_.Component(s.Field(19), 1);
  } else if (s.name() == "ORC") {
    orc_.emplace(codec_.Joined(Before(s.Field(2), codec_.delimiters().repetition)),
                 codec_.Joined(Before(s.Field(3), codec_.delimiters().repetition)));
  }
  return std::nullopt;
}

std::optional<Hl7Rejection> OruReader::ReadPid(const Segment& s, const std::string& loc) {
  context_ = Context::kOther;
  if (has_pid_) return Ae("100", loc, "more than one PID segment: one patient per message");
  if (!message_.orders.empty()) return Ae("100", loc, "PID segment after the first OBR");
  has_pid_ = true;
  std::vector<PatientIdentifier>& ids = message_.patient_identifiers;
  auto add = [&](absl::string_view cx, const char* source) {
    std::string id = codec_.Component(cx, 1);
    if (id.empty()) return;
    // CX.4 is a HD (namespace&universal id&type as subcomponents): its namespace names it.
    const std::vector<absl::string_view> parts = codec_.Components(cx, 5);
    ids.push_back({std::move(id),
                   Stripped(codec_.Decode(Before(parts[3], codec_.delimiters().subcomponent))),
                   Stripped(codec_.Decode(parts[4])), source});
  };
  for (absl::string_view rep : codec_.Repetitions(s.Field(3))) add(rep, "PID-3");
  add(s.Field(2), "PID-2");
  if (std::string ssn = Stripped(codec_.Decode(s.Field(19))); !ssn.empty()) {
    ids.push_back({std::move(ssn), "", "", "PID-19"});
  }
  if (ids.empty()) return Ae("101", loc + "^3", "PID-3 (patient identifier list) is empty");
  message_.patient_id = ids.front().id;
  message_.patient_id_issuer = ids.front().issuer;
  message_.patient_name = codec_.Joined(Before(s.Field(5), codec_.delimiters().repetition));
  message_.birth_date = AsciiOnly(codec_.Component(s.Field(7), 1), false).substr(0, 8);
  message_.sex = codec_.Component(s.Field(8), 1);
  return std::nullopt;
}

std::optional<Hl7Rejection> OruReader::ReadObr(const Segment& s, const std::string& loc) {
  context_ = Context::kOrder;
  LabOrder order;
  const char rep = codec_.delimiters().repetition;
  order.placer_order_number = codec_.Joined(Before(s.Field(2), rep));
  order.filler_order_number = codec_.Joined(Before(s.Field(3), rep));
  if (orc_.has_value()) {  // ORC-2/3 stand in for empty OBR-2/3
    if (order.placer_order_number.empty()) order.placer_order_number = orc_->first;
    if (order.filler_order_number.empty()) order.filler_order_number = orc_->second;
    orc_.reset();
  }
  order.service_code = codec_.Component(s.Field(4), 1);
  order.service_text = codec_.Component(s.Field(4), 2);
  if (order.service_code.empty() && order.service_text.empty()) {
    return Ae("101", loc + "^4", "OBR-4 (universal service identifier) is empty");
  }
  order.observed_at = codec_.Component(s.Field(7), 1);
  order.result_status = codec_.Component(s.Field(25), 1);
  message_.orders.push_back(std::move(order));
  return std::nullopt;
}

std::optional<Hl7Rejection> OruReader::ReadObx(const Segment& s, const std::string& loc) {
  if (message_.orders.empty()) return Ae("100", loc, "OBX segment before any OBR");
  context_ = Context::kObservation;
  LabObservation o;
  if (!absl::SimpleAtoi(codec_.Component(s.Field(1), 1), &o.set_id)) o.set_id = 0;
  o.value_type = absl::AsciiStrToUpper(codec_.Component(s.Field(2), 1));
  o.code = codec_.Component(s.Field(3), 1);
  o.code_text = codec_.Component(s.Field(3), 2);
  o.coding_system = codec_.Component(s.Field(3), 3);
  if (o.code.empty() && o.code_text.empty()) {
    return Ae("101", loc + "^3", "OBX-3 (observation identifier) is empty");
  }
  o.sub_id = Stripped(codec_.Decode(s.Field(4)));
  if (!s.Field(5).empty() && o.value_type.empty()) {
    return Ae("101", loc + "^2", "OBX-2 (value type) is empty but OBX-5 has a value");
  }
  std::optional<ObxValue> value = ReadValue(codec_, o.value_type, s.Field(5));
  if (!value) {
    return Ae("102", loc + "^5",
              absl::StrCat("OBX-5 does not hold a valid ", Printable(o.value_type, 3), " value"));
  }
  o.value = std::move(value->text);
  o.numeric = value->numeric;
  o.units = codec_.Component(s.Field(6), 1);
  if (o.units.empty()) o.units = codec_.Component(s.Field(6), 2);
  o.reference_range = Stripped(codec_.Decode(s.Field(7)));
  for (absl::string_view rep : codec_.Repetitions(s.Field(8))) {
    std::string flag(absl::StripAsciiWhitespace(codec_.Decode(rep)));
    if (!flag.empty()) o.abnormal_flags.push_back(std::move(flag));
  }
  o.result_status = codec_.Component(s.Field(11), 1);
  o.observed_at = codec_.Component(s.Field(14), 1);
  message_.orders.back().observations.push_back(std::move(o));
  return std::nullopt;
}

std::optional<Hl7Rejection> OruReader::ReadNte(const Segment& s) {
  std::vector<std::string> lines;
  for (absl::string_view rep : codec_.Repetitions(s.Field(3))) lines.push_back(codec_.Decode(rep));
  std::string note = absl::StrJoin(lines, "\n");
  if (absl::StripAsciiWhitespace(note).empty()) return std::nullopt;
  if (context_ == Context::kObservation) {
    message_.orders.back().observations.back().notes.push_back(std::move(note));
  } else if (context_ == Context::kOrder) {
    message_.orders.back().notes.push_back(std::move(note));
  }  // notes on the patient or on skipped segments are not kept
  return std::nullopt;
}

std::variant<LabMessage, Hl7Rejection> OruReader::Finish() && {
  if (!has_pid_) return Ae("100", "PID", "the message has no PID segment");
  if (message_.orders.empty()) return Ae("100", "OBR", "the message has no OBR segment");
  return std::move(message_);
}

// --- MSH -----------------------------------------------------------------------------------------

Hl7Header HeaderFrom(const Segment& msh, const Delimiters& d) {
  Hl7Header h;
  h.field_separator = d.field;
  h.encoding_characters = d.encoding;
  h.sending_application = std::string(msh.Field(3));
  h.sending_facility = std::string(msh.Field(4));
  h.receiving_application = std::string(msh.Field(5));
  h.receiving_facility = std::string(msh.Field(6));
  h.message_time = std::string(msh.Field(7));
  h.message_type = std::string(msh.Field(9));
  h.control_id = std::string(msh.Field(10));
  h.processing_id = std::string(msh.Field(11));
  h.version = Stripped(Before(msh.Field(12), d.component));
  h.charset = std::string(msh.Field(18));
  return h;
}

//! The header of a message that could not be converted: read from the raw MSH, ASCII only.
Hl7Header AsciiHeader(absl::string_view raw_msh, const Delimiters& d, bool double_byte) {
  const std::string ascii = AsciiOnly(raw_msh, double_byte);
  return HeaderFrom(SplitSegment(ascii, d.field, true), d);
}

//! Segments that name a segment but use another field separator than MSH-1: the MSH delimiters
//! do not describe this message, so nothing in it can be trusted.
std::optional<Hl7Rejection> CheckSeparators(const std::vector<absl::string_view>& lines, char sep) {
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    if (HasSegmentName(line) && line.size() > 3 && IsDelimiterChar(line[3]) && line[3] != sep) {
      return Ar(
          "102", line.substr(0, 3),
          absl::StrCat("segment ", i + 1, " does not use the field separator MSH-1 declares"));
    }
  }
  return std::nullopt;
}

//! What makes the message one this gateway will not process at all (AR).
std::optional<Hl7Rejection> CheckMsh(const Segment& msh, const Codec& c) {
  const std::string type = c.Component(msh.Field(9), 1);
  const std::string event = c.Component(msh.Field(9), 2);
  const std::string structure = c.Component(msh.Field(9), 3);
  const std::string shown = Printable(absl::StrCat(type, "^", event));
  if (type.empty()) return Ar("101", "MSH^1^9", "MSH-9 (message type) is empty");
  if (type != "ORU" || (!structure.empty() && structure != "ORU_R01")) {
    return Ar("200", "MSH^1^9",
              absl::StrCat("message type ", shown, " is not supported (ORU^R01)"));
  }
  if (event != "R01") {
    return Ar("201", "MSH^1^9", absl::StrCat("trigger event ", shown, " is not supported (R01)"));
  }
  // Without MSH-10 no ACK can say which message it answers: refused (AR), not an AE.
  if (absl::StripAsciiWhitespace(msh.Field(10)).empty()) {
    return Ar("101", "MSH^1^10", "MSH-10 (message control ID) is empty");
  }
  const std::string processing = c.Component(msh.Field(11), 1);
  if (processing != "P" && processing != "T" && processing != "D") {
    return Ar("202", "MSH^1^11", "MSH-11 (processing ID) is not P, T or D");
  }
  const std::string version = c.Component(msh.Field(12), 1);
  if (std::find(kVersions.begin(), kVersions.end(), version) == kVersions.end()) {
    return Ar(
        "203", "MSH^1^12",
        absl::StrCat("HL7 version ", Printable(version, 8), " is not supported (2.3 to 2.5.1)"));
  }
  return std::nullopt;
}

//! Parses a message already converted to UTF-8 whose raw MSH was read as `cs`.
LabParseOutcome ParseConverted(absl::string_view text, const Charset& cs) {
  const std::vector<absl::string_view> lines = SplitSegments(text);
  std::variant<Delimiters, Hl7Rejection> delimiters =
      Ae("102", "", "the message changed shape when converted to UTF-8");
  if (!lines.empty() && absl::StartsWith(lines[0], "MSH")) delimiters = ReadDelimiters(lines[0]);
  if (const auto* why = std::get_if<Hl7Rejection>(&delimiters)) return Rejected(std::nullopt, *why);
  const Delimiters& d = std::get<Delimiters>(delimiters);
  if (auto why = CheckSeparators(lines, d.field)) return Rejected(std::nullopt, *why);
  const Segment msh = SplitSegment(lines[0], d.field, true);
  Hl7Header header = HeaderFrom(msh, d);
  if (lines.size() > kMaxSegments) {
    return Rejected(header, Ar("207", "",
                               absl::StrCat("the message has ", lines.size(), " segments; at most ",
                                            kMaxSegments, " are accepted in one ORU^R01")));
  }
  if (LookupCharset(Before(msh.Field(18), d.repetition)) != cs) {
    return Rejected(header, Ae("102", "MSH^1^18", "MSH-18 reads differently after conversion"));
  }
  const Codec codec(d, cs);
  if (auto why = CheckMsh(msh, codec)) return Rejected(header, *why);
  OruReader reader(codec);
  for (size_t i = 1; i < lines.size(); ++i) {
    if (auto why = reader.Read(lines[i], i + 1)) return Rejected(header, *why);
  }
  auto result = std::move(reader).Finish();
  if (auto* why = std::get_if<Hl7Rejection>(&result)) return Rejected(header, *why);
  LabParseOutcome out;
  out.header = header;
  out.message = std::move(std::get<LabMessage>(result));
  out.message->header = std::move(header);
  return out;
}

}  // namespace

std::string CanonicalHl7(absl::string_view bytes) {
  return absl::StrJoin(SplitSegments(StripFraming(bytes)), "\r");
}

LabParseOutcome ParseLabMessage(absl::string_view bytes) {
  const absl::string_view raw = StripFraming(bytes);
  const absl::string_view raw_msh = raw.substr(0, raw.find_first_of("\r\n"));
  if (!absl::StartsWith(raw_msh, "MSH")) {
    return Rejected(std::nullopt, Ar("100", "", "the message does not start with an MSH segment"));
  }
  auto delimiters = ReadDelimiters(raw_msh);
  if (const auto* why = std::get_if<Hl7Rejection>(&delimiters)) return Rejected(std::nullopt, *why);
  const Delimiters& d = std::get<Delimiters>(delimiters);
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first != bytes.npos && bytes[first] == kStartBlock && !absl::StrContains(bytes, kEndBlock)) {
    return Rejected(AsciiHeader(raw_msh, d, false),
                    Ar("100", "",
                       "the MLLP frame has no end block (FS CR): the message may be "
                       "cut off; send it again"));
  }
  const Charset cs = DetectCharset(raw_msh, d);
  if (cs.kind == CharsetKind::kUnknown) {
    const std::string name(Before(RawMshField(raw_msh, d.field, 18, false), d.repetition));
    return Rejected(
        AsciiHeader(raw_msh, d, false),
        Ar("207", "MSH^1^18", absl::StrCat("unsupported character set ", Printable(name, 32))));
  }
  const std::optional<std::string> text = ToUtf8(raw, cs);
  if (!text.has_value()) {
    const bool declared = !RawMshField(raw_msh, d.field, 18, false).empty();
    return Rejected(AsciiHeader(raw_msh, d, cs.double_byte),
                    Ae("102", "MSH^1^18",
                       declared ? "the text is not valid in the character set MSH-18 declares"
                                : "the text is not ASCII and MSH-18 declares no character set "
                                  "(set MSH-18, e.g. UNICODE UTF-8 or GB 18030-2000)"));
  }
  return ParseConverted(*text, cs);
}

}  // namespace rdg::formats
