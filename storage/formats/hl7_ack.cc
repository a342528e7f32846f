// HL7 v2 acknowledgements and message splitting (see hl7_lab.h).
//
// The ACK answers in the original's delimiters, version and character set: original mode MSA
// plus ERR (ERR-2..8 from 2.5, the composite ERR-1 and MSA-3 before), error codes of table 0357.
#include <algorithm>
#include <array>
#include <utility>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "storage/formats/hl7_internal.h"
#include "storage/formats/hl7_lab.h"
#include "storage/formats/text.h"

namespace rdg::formats {

std::string hl7_internal::Escape(absl::string_view text, const Delimiters& d) {
  static constexpr std::array<absl::string_view, 8> kCodes = {"E", "F", "S",   "T",
                                                              "R", "P", ".br", "X0D"};
  const std::string special = {d.escape,     d.field,
                               d.component,  d.subcomponent,
                               d.repetition, d.encoding.size() == 5 ? d.encoding[4] : d.escape,
                               '\n',         '\r'};
  std::string out;
  for (char c : text) {
    const size_t k = special.find(c);
    if (k == special.npos) {
      out += c;
    } else {
      absl::StrAppend(&out, std::string(1, d.escape), kCodes[k], std::string(1, d.escape));
    }
  }
  return out;
}

namespace {

using hl7_internal::AsciiOnly;
using hl7_internal::Before;
using hl7_internal::Charset;
using hl7_internal::CharsetKind;
using hl7_internal::Delimiters;
using hl7_internal::Escape;
using hl7_internal::kStartBlock;
using hl7_internal::LookupCharset;
using hl7_internal::MakeDelimiters;

absl::string_view TableText(absl::string_view code) {  // HL7 table 0357
  static constexpr std::array<absl::string_view, 4> k100 = {
      "Segment sequence error", "Required field missing", "Data type error",
      "Table value not found"};
  static constexpr std::array<absl::string_view, 8> k200 = {
      "Unsupported message type",  "Unsupported event code",    "Unsupported processing id",
      "Unsupported version id",    "Unknown key identifier",    "Duplicate key identifier",
      "Application record locked", "Application internal error"};
  int n = -1;
  if (!absl::SimpleAtoi(code, &n)) return "Application error";
  if (n >= 100 && n < 104) return k100[n - 100];
  if (n >= 200 && n < 208) return k200[n - 200];
  return n == 0 ? "Message accepted" : "Application error";
}

//! A field echoed from the original (already encoded with the same delimiters): only what
//! would break the segment structure is neutralised.
std::string Echo(absl::string_view field, const Delimiters& d) {
  std::string out(field);
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == d.field) c = ' ';
  }
  return out;
}

//! Versions before 2.5 answer with MSA-3 and the composite ERR-1.
bool IsLegacyVersion(absl::string_view v) {
  return v.size() >= 3 && v[0] == '2' && v[1] == '.' && v[2] >= '1' && v[2] <= '4' &&
         (v.size() == 3 || v[3] == '.');
}

std::string AckVersion(const std::optional<Hl7Header>& h) {
  const bool usable = h.has_value() && h->version.size() >= 3 && h->version.size() <= 8 &&
                      absl::StartsWith(h->version, "2.") &&
                      h->version.find_first_not_of("0123456789.") == std::string::npos;
  return usable ? h->version : "2.5.1";
}

std::string AckMsh(const std::optional<Hl7Header>& h, const Delimiters& d, absl::Time now,
                   absl::string_view ack_control_id, const std::string& version) {
  const Hl7Header original = h.value_or(Hl7Header());
  std::vector<absl::string_view> type = absl::StrSplit(original.message_type, d.component);
  type.resize(2);
  const bool event_ok =
      type[1].size() == 3 && std::all_of(type[1].begin(), type[1].end(), absl::ascii_isalnum);
  const bool with_structure = !IsLegacyVersion(version) || (version[2] >= '3' && version != "2.3");
  std::string message_type =
      absl::StrCat("ACK", std::string(1, d.component), event_ok ? type[1] : "R01");
  if (with_structure) absl::StrAppend(&message_type, std::string(1, d.component), "ACK");
  const std::string processing(Before(original.processing_id, d.component));
  const std::string f(1, d.field);
  std::string msh = absl::StrCat(
      "MSH", f, d.encoding, f, Echo(original.receiving_application, d), f,
      Echo(original.receiving_facility, d), f, Echo(original.sending_application, d), f,
      Echo(original.sending_facility, d), f,
      absl::FormatTime("%Y%m%d%H%M%S+0000", now, absl::UTCTimeZone()), f, f, message_type, f,
      Escape(ack_control_id, d), f,
      (processing == "P" || processing == "T" || processing == "D") ? processing : "P", f, version);
  if (!original.charset.empty()) {  // MSH-18
    absl::StrAppend(&msh, std::string(6, d.field), Echo(original.charset, d));
  }
  return msh;
}

std::string AckErr(const Hl7Rejection& r, const Delimiters& d, bool legacy) {
  const std::string sep(1, d.field);
  const std::string comp(1, d.component);
  std::vector<std::string> location;
  for (absl::string_view part : absl::StrSplit(r.location, '^')) {
    location.push_back(Escape(part, d));
  }
  if (r.location.empty()) location.clear();
  const std::string code = Escape(r.error_code, d);
  const std::string text = Escape(TableText(r.error_code), d);
  if (legacy) {  // ERR-1 (CM_ELD): segment ^ sequence ^ field ^ code&text&table
    location.resize(3);
    const std::string sub(1, d.subcomponent);
    return absl::StrCat("ERR", sep, absl::StrJoin(location, comp), comp, code, sub, text, sub,
                        "HL70357");
  }
  // ERR-2 location, ERR-3 error code (CWE), ERR-4 severity, ERR-8 user message.
  return absl::StrCat("ERR", sep, sep, absl::StrJoin(location, comp), sep, code, comp, text, comp,
                      "HL70357", sep, "E", sep, sep, sep, sep, Escape(r.reason, d));
}

//! The ACK text (UTF-8) in the original's character set.
std::string EncodeAck(const std::string& text, const std::optional<Hl7Header>& h,
                      const Delimiters& d) {
  const Charset cs = h.has_value() ? LookupCharset(Before(h->charset, d.repetition)) : Charset();
  if (cs.kind == CharsetKind::kAscii || cs.kind == CharsetKind::kUtf8) return text;
  if (cs.kind == CharsetKind::kIconv) {
    if (auto encoded = Iconv(text, cs.iconv_name, "UTF-8")) return *std::move(encoded);
    if (auto encoded = Iconv(AsciiOnly(text, false), cs.iconv_name, "UTF-8")) {
      return *std::move(encoded);
    }
  }
  return AsciiOnly(text, false);  // an unknown charset: ASCII is the safest guess
}
//! Whether the line at the start of `rest` is the segment `name` (not a longer name).
bool LineIsSegment(absl::string_view rest, absl::string_view name) {
  return absl::StartsWith(rest, name) &&
         (rest.size() == name.size() || !absl::ascii_isalnum(rest[name.size()]));
}

//! Appends to `out` the messages of `data`: each starts at a line that is an MSH segment. The
//! batch envelope (FHS, BHS, BTS, FTS lines) is not part of any message and is dropped.
void SplitAtMsh(absl::string_view data, std::vector<std::string>& out) {
  auto add = [&out](absl::string_view piece) {
    if (!absl::StripAsciiWhitespace(piece).empty()) out.emplace_back(piece);
  };
  size_t piece_start = 0;
  for (size_t line = 0; line < data.size();) {
    const absl::string_view rest = data.substr(line);
    const bool envelope = LineIsSegment(rest, "FHS") || LineIsSegment(rest, "BHS") ||
                          LineIsSegment(rest, "BTS") || LineIsSegment(rest, "FTS");
    if ((envelope || LineIsSegment(rest, "MSH")) && line > piece_start) {
      add(data.substr(piece_start, line - piece_start));
      piece_start = line;
    }
    const size_t end = data.find_first_of("\r\n", line);
    line = end == data.npos ? data.size() : end + 1;
    if (envelope) piece_start = line;
  }
  add(data.substr(piece_start));
}

}  // namespace

absl::string_view Hl7AckCodeName(Hl7AckCode code) {
  if (code == Hl7AckCode::kAccept) return "AA";
  return code == Hl7AckCode::kReject ? "AR" : "AE";
}

std::string BuildHl7Ack(const std::optional<Hl7Header>& original, Hl7AckCode code,
                        const Hl7Rejection* rejection, absl::Time now,
                        absl::string_view ack_control_id) {
  Delimiters d;
  if (original.has_value()) {
    auto usable = MakeDelimiters(original->field_separator, original->encoding_characters);
    if (const auto* ok = std::get_if<Delimiters>(&usable)) d = *ok;
  }
  const std::string version = AckVersion(original);
  const bool legacy = IsLegacyVersion(version);
  const bool with_error = rejection != nullptr && code != Hl7AckCode::kAccept;
  const std::string sep(1, d.field);
  std::string text = AckMsh(original, d, now, ack_control_id, version);
  absl::StrAppend(&text, "\rMSA", sep, Hl7AckCodeName(code), sep,
                  original.has_value() ? Echo(original->control_id, d) : "");
  if (with_error && legacy) absl::StrAppend(&text, sep, Escape(rejection->reason, d));
  if (with_error) absl::StrAppend(&text, "\r", AckErr(*rejection, d, legacy));
  text += '\r';
  return EncodeAck(text, original, d);
}

std::vector<std::string> SplitHl7Messages(absl::string_view data) {
  std::vector<std::string> out;
  if (data.find(kStartBlock) == data.npos) {
    SplitAtMsh(data, out);
    return out;
  }
  for (size_t start = data.find(kStartBlock); start != data.npos;) {  // MLLP: inside each frame
    const size_t end = data.find_first_of("\x0b\x1c", start + 1);
    if (end == data.npos || data[end] != hl7_internal::kEndBlock) {
      // A frame cut off before its end block: kept whole, start block included, so that the
      // parser refuses it as incomplete rather than a truncated message passing for a whole one.
      out.emplace_back(data.substr(start, end == data.npos ? data.npos : end - start));
    } else {
      SplitAtMsh(data.substr(start + 1, end - start - 1), out);
    }
    start = end == data.npos ? end : data.find(kStartBlock, end);
  }
  return out;
}

}  // namespace rdg::formats
