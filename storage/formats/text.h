// Text as people read it: UTF-8 checks and repair, conversion with glibc iconv, the display width
// of a string on a terminal, and DICOM person names written the way people write them. No DCMTK:
// the gateway's services, the storage repair and the command-line clients all use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace rdg::formats {

//! Decodes the UTF-8 sequence at text[i] and advances i past it; -1 (having advanced one byte)
//! for an invalid, overlong or surrogate sequence. Requires i < text.size().
int64_t NextCodePoint(absl::string_view text, size_t& i);

//! Appends code point `cp` (≤ U+10FFFF, not a surrogate) as UTF-8.
void AppendUtf8(std::string& out, uint32_t cp);

//! Whether `text` is well-formed UTF-8 (what protobuf requires of every `string` field).
bool IsValidUtf8(absl::string_view text);

//! `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD
//! (the replacement character �); `text` itself when it is valid.
std::string ToValidUtf8(absl::string_view text);

//! `text` (valid UTF-8) with every control character — C0 (tab, CR, LF included), DEL, C1 — and
//! every bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069) replaced by U+FFFD:
//! names from a device can then never move a terminal's cursor, set its title or reorder a row.
std::string WithoutControls(absl::string_view text);

//! Converts `in` from the iconv encoding `from` to `to` (glibc iconv names: "GB18030",
//! "ISO-8859-1", "UTF-8"); nullopt on a byte sequence invalid in `from` or a character `to`
//! cannot hold.
std::optional<std::string> Iconv(absl::string_view in, const std::string& to, const char* from);

//! The longest prefix of `text` of at most `max_bytes` bytes that ends on a UTF-8 character
//! boundary (for limits counted in bytes: stored fields, log lines).
std::string Utf8Prefix(absl::string_view text, size_t max_bytes);

//! Text safe inside an XML element or attribute (SVG, DICOM audit messages): markup escaped,
//! invalid UTF-8 replaced by '?' and characters XML 1.0 forbids (controls, line ends and tabs
//! included, U+FFFE/U+FFFF) replaced by a space — so the result is also one line.
std::string XmlEscape(absl::string_view text);

//! Columns `text` (UTF-8) takes on a terminal: East Asian wide and fullwidth characters (CJK,
//! Hangul, kana, fullwidth forms, most emoji) count two, combining marks and controls zero,
//! everything else one; an invalid byte counts one (it is shown as �).
int DisplayWidth(absl::string_view text);

//! `text` padded with spaces to `width` display columns (unchanged when already as wide).
std::string PadToWidth(absl::string_view text, int width);

//! `text` cut to at most `width` display columns, ending in "…" when it was cut; never splits a
//! character.
std::string TruncateToWidth(absl::string_view text, int width);

//! A DICOM Person Name (PS3.5 6.2, UTF-8) as people write it: components in their order
//! (family, given, middle) joined by a space — without one between ideographic (CJK) parts, so
//! `张^三` becomes `张三` and `Buc^Jérôme` becomes `Buc Jérôme`; prefix and suffix are kept
//! around them. With an ideographic group beside an alphabetic one (`ZHANG^SAN=张^三`) the
//! ideographic form leads and the alphabetic follows in parentheses: `张三 (ZHANG SAN)`.
std::string PersonNameForDisplay(absl::string_view dicom_person_name);

//! Age in DICOM Age String form ("045Y", "011M", "020D") from two DICOM dates (YYYYMMDD; the
//! second may go on with a time, as a DT does) — years from two years on, months from two
//! months, days below; "" if either date is unusable or the birth is after the exam.
std::string AgeAt(absl::string_view birth_date, absl::string_view exam_date);

//! A DICOM/HL7 date ("YYYYMMDD…") as "YYYY-MM-DD"; other text unchanged.
std::string DateForDisplay(absl::string_view date);

//! A DICOM sex code for people: M 男, F 女, O 其他; anything else unchanged.
std::string SexForDisplay(absl::string_view sex);

//! Whether `age` is a DICOM Age String: three digits and D, W, M or Y ("045Y").
bool IsDicomAge(absl::string_view age);

//! A DICOM age string ("042Y", "011M", "003W", "020D") for people: "42岁", "11个月", "3周",
//! "20天"; anything else is returned unchanged.
std::string AgeForDisplay(absl::string_view dicom_age);

}  // namespace rdg::formats
