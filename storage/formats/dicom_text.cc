#include "storage/formats/dicom_text.h"

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcspchrs.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/formats/text.h"

namespace rdg::formats {
namespace {

//! Only bytes of the default repertoire: no conversion to do. ESC (0x1B) starts an ISO 2022
//! code extension whose bytes may all be 7-bit (ISO 2022 IR 87, IR 58 in its 7-bit form).
bool IsPlainAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b < 0x80 && b != 0x1B;
  });
}

//! Whether the declared set is the default repertoire (no value, or ISO_IR 6 / ISO 2022 IR 6).
bool IsDefaultRepertoire(absl::string_view declared) {
  for (absl::string_view term : absl::StrSplit(declared, '\\')) {
    term = absl::StripAsciiWhitespace(term);
    if (!term.empty() && term != "ISO_IR 6" && term != "ISO 2022 IR 6") return false;
  }
  return true;
}

bool HasTerm(absl::string_view declared, absl::string_view wanted) {
  for (absl::string_view term : absl::StrSplit(declared, '\\')) {
    if (absl::StripAsciiWhitespace(term) == wanted) return true;
  }
  return false;
}

//! ISO 2022 IR 87 / IR 159 (JIS X 0208 / 0212) with IR 6, IR 13 and IR 14. Debian's glibc iconv
//! knows no name for these DICOM terms, so DCMTK cannot select them: the value is rewritten as
//! EUC-JP (the same characters with their high bits set) and converted by iconv. Code
//! extensions end at the value's delimiters (PS3.5 6.1.2.5.3).
std::optional<std::string> JapaneseToUtf8(absl::string_view raw, absl::string_view delimiters,
                                          bool katakana_g1) {
  enum class G0 { kAscii, kJis0208, kJis0212 } g0 = G0::kAscii;
  std::string euc;
  for (size_t i = 0; i < raw.size();) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c == 0x1B) {
      const absl::string_view rest = raw.substr(i + 1);
      if (absl::StartsWith(rest, "$B") || absl::StartsWith(rest, "$@")) {
        g0 = G0::kJis0208;
      } else if (absl::StartsWith(rest, "$(D")) {
        g0 = G0::kJis0212;
        ++i;
      } else if (absl::StartsWith(rest, "(B") || absl::StartsWith(rest, "(J")) {
        g0 = G0::kAscii;
      } else if (absl::StartsWith(rest, ")I")) {
        katakana_g1 = true;
      } else {
        return std::nullopt;
      }
      i += 3;
      continue;
    }
    if (g0 != G0::kAscii && c >= 0x21 && c <= 0x7E) {
      if (i + 1 >= raw.size()) return std::nullopt;
      if (g0 == G0::kJis0212) euc += '\x8F';
      euc += static_cast<char>(c | 0x80);
      euc += static_cast<char>(static_cast<unsigned char>(raw[i + 1]) | 0x80);
      i += 2;
      continue;
    }
    if (katakana_g1 && c >= 0xA1 && c <= 0xDF) {
      euc += '\x8E';
      euc += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c >= 0x80) return std::nullopt;
    if (delimiters.find(static_cast<char>(c)) != absl::string_view::npos) g0 = G0::kAscii;
    euc += static_cast<char>(c);
    ++i;
  }
  return Iconv(euc, "UTF-8", "EUC-JP");
}

//! The declared value as it may appear in a note or log line: letters, digits, ' ', '_', '-', '\\'.
std::string ForNote(absl::string_view declared) {
  std::string out;
  for (char c : declared.substr(0, 64)) {
    out += absl::ascii_isalnum(c) || c == ' ' || c == '_' || c == '-' || c == '\\' ? c : '?';
  }
  return out;
}

//! DCMTK selects an ISO 2022 term (code extensions) only among several values: a lone
//! `ISO 2022 IR 100` is the same set with escapes allowed, and a lone multi-byte term (IR 58,
//! IR 149) may not come first. Written as DCMTK reads them.
std::string WithCodeExtensions(const std::string& declared) {
  if (declared.find('\\') != std::string::npos || !absl::StartsWith(declared, "ISO 2022 ")) {
    return declared;
  }
  if (declared == "ISO 2022 IR 58" || declared == "ISO 2022 IR 149") return "\\" + declared;
  return declared + "\\" + declared;
}

}  // namespace

DicomTextDecoder::DicomTextDecoder(absl::string_view specific_character_set)
    : declared_(absl::StripAsciiWhitespace(specific_character_set)),
      declared_default_(IsDefaultRepertoire(declared_)) {
  if (declared_default_) return;
  if (HasTerm(declared_, "ISO 2022 IR 87") || HasTerm(declared_, "ISO 2022 IR 159")) {
    japanese_ = true;
    katakana_g1_ = absl::StartsWith(declared_, "ISO 2022 IR 13");
    return;
  }
  converter_ = std::make_unique<DcmSpecificCharacterSet>();
  const std::string terms = WithCodeExtensions(declared_);
  OFCondition cond = converter_->selectCharacterSet(OFString(terms.c_str()), "ISO_IR 192");
  if (cond.good()) {
    cond = converter_->setConversionFlags(OFCharacterEncoding::AbortTranscodingOnIllegalSequence);
  }
  if (cond.bad()) {
    converter_.reset();
    // The declared value is the device's, not the patient's: safe to name (and cut short).
    Note(absl::StrCat("Specific Character Set (0008,0005) '", ForNote(declared_),
                      "' is not one this gateway can convert"));
  }
}

DicomTextDecoder::~DicomTextDecoder() = default;

std::string DicomTextDecoder::Decode(absl::string_view raw, absl::string_view delimiters) {
  // Names, IDs and descriptions hold no control characters; one that came through (ESC of an
  // escape sequence no declaration explains, a C1 code from Latin-1) must not reach a screen.
  return WithoutControls(ToUtf8(raw, delimiters));
}

std::string DicomTextDecoder::ToUtf8(absl::string_view raw, absl::string_view delimiters) {
  if (IsPlainAscii(raw)) return std::string(raw);
  if (japanese_) {
    if (auto out = JapaneseToUtf8(raw, delimiters, katakana_g1_); out && IsValidUtf8(*out)) {
      return *std::move(out);
    }
  } else if (converter_ != nullptr) {
    OFString out;
    const OFCondition cond = converter_->convertString(
        raw.data(), raw.size(), out, OFString(delimiters.data(), delimiters.size()));
    if (cond.good() && IsValidUtf8(absl::string_view(out.c_str(), out.length()))) {
      return std::string(out.c_str(), out.length());
    }
  }
  const std::string why = declared_default_
                              ? "non-ASCII text without a Specific Character Set (0008,0005)"
                              : absl::StrCat("text that is not valid '", ForNote(declared_), "'");
  if (IsValidUtf8(raw)) {
    Note(absl::StrCat(why, ": read as UTF-8"));
    return std::string(raw);
  }
  if (auto gb = Iconv(raw, "UTF-8", "GB18030"); gb.has_value() && IsValidUtf8(*gb)) {
    Note(absl::StrCat(why, ": read as GB18030"));
    return *std::move(gb);
  }
  Note(absl::StrCat(why, ": bytes that fit no character set replaced by U+FFFD"));
  return ToValidUtf8(raw);
}

std::string DicomTextDecoder::Notes() const { return absl::StrJoin(notes_, "; "); }

void DicomTextDecoder::Note(std::string note) {
  if (std::find(notes_.begin(), notes_.end(), note) == notes_.end())
    notes_.push_back(std::move(note));
}

}  // namespace rdg::formats
