// Reading values out of DCMTK data sets: shared by the formats that parse DICOM (dicom_parser,
// ecg_waveform). Internal to gateway/formats (it includes DCMTK, which nothing else does).
#pragma once

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcitem.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace rdg::formats {

//! The value of `tag` in `item` (every value of a multi-valued element, backslash-separated),
//! without leading or trailing blanks; empty when absent.
inline std::string TrimmedString(DcmItem& item, const DcmTagKey& tag) {
  OFString value;
  if (item.findAndGetOFStringArray(tag, value).good()) {
    return std::string(absl::StripAsciiWhitespace(absl::string_view(value.c_str(), value.size())));
  }
  return {};
}

}  // namespace rdg::formats
