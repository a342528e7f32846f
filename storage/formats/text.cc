#include "storage/formats/text.h"

#include <errno.h>
#include <iconv.h>

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace rdg::formats {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

struct Range {
  uint32_t first, last;
};

//! Characters two columns wide (Unicode East Asian Width W and F, the blocks a Chinese,
//! Japanese or Korean name or an emoji uses).
constexpr std::array<Range, 20> kWide = {{
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
    {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD}, {0x1B000, 0x1B2FF},
}};

//! Characters that take no column of their own: combining marks and zero-width characters.
constexpr std::array<Range, 7> kZeroWidth = {{
    {0x0300, 0x036F},
    {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF},
    {0x200B, 0x200F},
    {0x20D0, 0x20FF},
    {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F},
}};

template <size_t N>
bool InRanges(const std::array<Range, N>& ranges, uint32_t cp) {
  for (const Range& r : ranges) {
    if (cp >= r.first && cp <= r.last) return true;
  }
  return false;
}

int CodePointWidth(int64_t cp) {
  if (cp < 0) return 1;  // shown as U+FFFD
  const auto c = static_cast<uint32_t>(cp);
  if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return 0;
  if (InRanges(kZeroWidth, c)) return 0;
  return InRanges(kWide, c) ? 2 : 1;
}

//! Whether the code point is written without spaces between words (CJK ideographs, kana,
//! Hangul, fullwidth forms).
bool IsWideAt(absl::string_view text, bool last) {
  if (text.empty()) return false;
  size_t i = 0;
  if (last) {
    i = text.size() - 1;
    while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
  }
  return CodePointWidth(NextCodePoint(text, i)) == 2;
}

//! One component group of a person name (family^given^middle^prefix^suffix) for display.
std::string GroupForDisplay(absl::string_view group) {
  std::vector<absl::string_view> c = absl::StrSplit(group, '^');
  for (auto& part : c) part = absl::StripAsciiWhitespace(part);
  c.resize(5);
  std::string out;
  for (absl::string_view part : {c[3], c[0], c[1], c[2], c[4]}) {
    if (part.empty()) continue;
    if (!out.empty() && !(IsWideAt(out, true) && IsWideAt(part, false))) out += ' ';
    out.append(part.data(), part.size());
  }
  return out;
}

}  // namespace

int64_t NextCodePoint(absl::string_view text, size_t& i) {
  const auto lead = static_cast<unsigned char>(text[i++]);
  if (lead < 0x80) return lead;
  const int extra = lead >= 0xF0 && lead <= 0xF4 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC2 ? 1 : -1;
  if (extra < 0 || lead > 0xF4) return -1;
  int64_t cp = lead & (0x3F >> extra);
  const size_t start = i;
  for (int k = 0; k < extra; ++k) {
    if (i >= text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      i = start;  // the bytes after a bad lead are looked at again on their own
      return -1;
    }
    cp = (cp << 6) | (static_cast<unsigned char>(text[i++]) & 0x3F);
  }
  static constexpr std::array<int64_t, 4> kMinimum = {0, 0x80, 0x800, 0x10000};
  if (cp < kMinimum[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    i = start;
    return -1;
  }
  return cp;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
    } else if (NextCodePoint(text, i) < 0) {
      return false;
    }
  }
  return true;
}

std::string ToValidUtf8(absl::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    const size_t at = i;
    if (NextCodePoint(text, i) < 0) {
      out += kReplacement;
    } else {
      out.append(text.data() + at, i - at);
    }
  }
  return out;
}

std::string WithoutControls(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t at = i;
    const int64_t cp = NextCodePoint(text, i);
    const bool control = cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || (cp >= 0x202A && cp <= 0x202E) ||
                         (cp >= 0x2066 && cp <= 0x2069);
    if (control) {
      out += kReplacement;
    } else {
      out.append(text.data() + at, i - at);
    }
  }
  return out;
}

std::optional<std::string> Iconv(absl::string_view in, const std::string& to, const char* from) {
  iconv_t cd = iconv_open(to.c_str(), from);
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  // Enough for every pair used here: no character grows more than fourfold.
  std::string out(in.size() * 4 + 16, '\0');
  char* src = const_cast<char*>(in.data());  // iconv's signature; the input is not written
  size_t src_left = in.size();
  char* dst = out.data();
  size_t dst_left = out.size();
  bool ok = iconv(cd, &src, &src_left, &dst, &dst_left) != static_cast<size_t>(-1);
  // Stateful encodings (ISO 2022) may still owe a shift back to the initial state.
  ok = ok && iconv(cd, nullptr, nullptr, &dst, &dst_left) != static_cast<size_t>(-1);
  iconv_close(cd);
  if (!ok) return std::nullopt;
  out.resize(out.size() - dst_left);
  return out;
}

int DisplayWidth(absl::string_view text) {
  int width = 0;
  for (size_t i = 0; i < text.size();) width += CodePointWidth(NextCodePoint(text, i));
  return width;
}

std::string PadToWidth(absl::string_view text, int width) {
  std::string out(text);
  const int have = DisplayWidth(text);
  if (have < width) out.append(static_cast<size_t>(width - have), ' ');
  return out;
}

std::string TruncateToWidth(absl::string_view text, int width) {
  if (DisplayWidth(text) <= width) return std::string(text);
  std::string out;
  int used = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t at = i;
    const int64_t cp = NextCodePoint(text, i);
    const int w = CodePointWidth(cp);
    if (used + w > width - 1) break;  // one column for the ellipsis
    used += w;
    if (cp < 0) {
      out += kReplacement;
    } else {
      out.append(text.data() + at, i - at);
    }
  }
  return out + "\xE2\x80\xA6";  // …
}

std::string PersonNameForDisplay(absl::string_view dicom_person_name) {
  // A multi-valued name (several people): the first one.
  const absl::string_view first = dicom_person_name.substr(0, dicom_person_name.find('\\'));
  std::vector<absl::string_view> groups = absl::StrSplit(first, '=');
  groups.resize(2);
  const std::string alphabetic = GroupForDisplay(groups[0]);
  const std::string ideographic = GroupForDisplay(groups[1]);
  if (ideographic.empty()) return alphabetic;
  if (alphabetic.empty() || alphabetic == ideographic) return ideographic;
  return ideographic + " (" + alphabetic + ")";
}

namespace {

//! A DICOM date (YYYYMMDD) that names a real day.
std::optional<absl::CivilDay> DicomDate(absl::string_view text) {
  int y = 0, m = 0, d = 0;
  if (text.size() != 8 || !absl::SimpleAtoi(text.substr(0, 4), &y) ||
      !absl::SimpleAtoi(text.substr(4, 2), &m) || !absl::SimpleAtoi(text.substr(6, 2), &d)) {
    return std::nullopt;
  }
  const absl::CivilDay day(y, m, d);
  if (day.year() != y || day.month() != m || day.day() != d) return std::nullopt;  // 20260230
  return day;
}

}  // namespace

std::string AgeAt(absl::string_view birth_date, absl::string_view exam_date) {
  const std::optional<absl::CivilDay> birth = DicomDate(birth_date);
  const std::optional<absl::CivilDay> exam = DicomDate(exam_date.substr(0, 8));
  if (!birth || !exam || *exam < *birth) return "";
  int months =
      static_cast<int>((exam->year() - birth->year()) * 12 + exam->month() - birth->month());
  if (exam->day() < birth->day()) --months;
  const int64_t days = *exam - *birth;
  if (months >= 24) return absl::StrFormat("%03dY", std::min(months / 12, 999));
  if (days >= 60) return absl::StrFormat("%03dM", months);
  return absl::StrFormat("%03dD", days);
}

std::string DateForDisplay(absl::string_view date) {
  if (date.size() < 8 || !std::all_of(date.begin(), date.begin() + 8, absl::ascii_isdigit)) {
    return std::string(date);
  }
  return absl::StrCat(date.substr(0, 4), "-", date.substr(4, 2), "-", date.substr(6, 2));
}

std::string SexForDisplay(absl::string_view sex) {
  if (sex == "M") return "男";
  if (sex == "F") return "女";
  if (sex == "O") return "其他";
  return std::string(sex);
}

bool IsDicomAge(absl::string_view age) {
  return age.size() == 4 && absl::ascii_isdigit(age[0]) && absl::ascii_isdigit(age[1]) &&
         absl::ascii_isdigit(age[2]) && absl::StrContains("DWMY", age[3]);
}

std::string AgeForDisplay(absl::string_view dicom_age) {
  int n = 0;
  if (dicom_age.size() != 4 || !absl::SimpleAtoi(dicom_age.substr(0, 3), &n)) {
    return std::string(dicom_age);
  }
  switch (dicom_age[3]) {
    case 'Y':
      return absl::StrCat(n, "岁");
    case 'M':
      return absl::StrCat(n, "个月");
    case 'W':
      return absl::StrCat(n, "周");
    case 'D':
      return absl::StrCat(n, "天");
    default:
      return std::string(dicom_age);
  }
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const int64_t cp = NextCodePoint(text, i);
    switch (cp) {
      case -1:
        out += '?';
        break;
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (cp < 0x20 || cp == 0xFFFE || cp == 0xFFFF) {
          out += ' ';
        } else {
          AppendUtf8(out, static_cast<uint32_t>(cp));
        }
    }
  }
  return out;
}

std::string Utf8Prefix(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Back off continuation bytes (10xxxxxx) so that no character is split.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

}  // namespace rdg::formats
