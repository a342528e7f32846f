// Reading values out of DCMTK data sets: shared by the formats that parse DICOM (dicom_parser,
// ecg_waveform). Internal to storage/formats (it includes DCMTK, which nothing else does).
#pragma once

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcitem.h>

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace rdg::formats {

//! The value of `tag` in `item` (every value of a multi-valued element, backslash-separated),
//! without leading or trailing blanks and NUL padding (UIDs); empty when absent.
inline std::string TrimmedString(DcmItem& item, const DcmTagKey& tag) {
  OFString value;
  DcmElement* element = nullptr;
  // Not normalised: DCMTK would split the value at every 0x5C byte to trim each part, and 0x5C
  // is also a trail byte of GB18030/GBK characters (淺 is 9C 5C).
  if (item.findAndGetElement(tag, element).good() && element != nullptr &&
      element->getOFStringArray(value, /*normalize=*/OFFalse).good()) {
    absl::string_view v(value.c_str(), value.size());
    while (!v.empty() && (v.back() == '\0' || absl::ascii_isspace(v.back()))) v.remove_suffix(1);
    return std::string(absl::StripLeadingAsciiWhitespace(v));
  }
  return {};
}

//! The first value of a decimal string (DS) or binary number, or nullopt when absent or
//! unreadable (it may be infinite or NaN: callers check).
inline std::optional<double> GetDecimal(DcmItem& item, const DcmTagKey& tag) {
  Float64 value = 0;
  if (item.findAndGetFloat64(tag, value).good()) return value;
  return std::nullopt;
}

//! The first item of `sequence` in `item`, or nullptr.
inline DcmItem* FirstItem(DcmItem& item, const DcmTagKey& sequence) {
  DcmItem* first = nullptr;
  if (item.findAndGetSequenceItem(sequence, first, 0).good()) return first;
  return nullptr;
}

}  // namespace rdg::formats
