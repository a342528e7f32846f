#include "storage/formats/file_kind.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rdg::formats {
namespace {

//! Printable ASCII, tabs and line ends, and well-formed UTF-8 sequences; a sequence cut at the
//! end of `s` counts as well-formed (`s` is a file's first bytes).
bool IsPrintableUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\r' && c != '\n' && c != '\t') return false;
      if (c == 0x7F) return false;
      ++i;
      continue;
    }
    const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || c > 0xF4) return false;
    for (size_t k = 1; k < n && i + k < s.size(); ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

std::string NonDicomKind(absl::string_view head) {
  if (head.size() >= 132 && head.substr(128, 4) == "DICM") return "";
  struct Magic {
    absl::string_view prefix;
    const char* kind;
  };
  static constexpr Magic kMagic[] = {{"\xFF\xD8\xFF", "a JPEG image"},
                                     {"\x89PNG\r\n\x1A\n", "a PNG image"},
                                     {"%PDF", "a PDF document"},
                                     {"PK\x03\x04", "a ZIP archive"},
                                     {"GIF8", "a GIF image"},
                                     {absl::string_view("II*\0", 4), "a TIFF image"},
                                     {absl::string_view("MM\0*", 4), "a TIFF image"},
                                     {"<?xml", "an XML document"},
                                     {"MSH|", "an HL7 message"},
                                     {"\x0BMSH", "an HL7 message (MLLP frame)"},
                                     {"\x1F\x8B", "a gzip archive"},
                                     {"Rar!", "a RAR archive"},
                                     {"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"}};
  for (const Magic& m : kMagic) {
    if (absl::StartsWith(head, m.prefix)) return m.kind;
  }
  // DICOM without a preamble starts with a binary tag (group 0002 or 0008: zero bytes); text
  // is printable UTF-8 throughout its first bytes.
  if (head.size() >= 16 && IsPrintableUtf8(head.substr(0, 512))) return "text";
  return "";
}

std::string NotDicomMessage(absl::string_view kind) {
  return absl::StrCat("this is ", kind,
                      ", not a DICOM file: export the study from the modality as DICOM");
}

}  // namespace rdg::formats
