// Recognises files that are obviously not DICOM by their first bytes (JPEG, PNG, PDF, ZIP, …), so
// that the gateway and rdg-clinic can say what a file is instead of how DICOM parsing failed.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace rdg::formats {

//! "a JPEG image", "a PDF document", "text", … for a file that starts with `head` (its first
//! bytes, 512 are plenty) and is clearly not DICOM; "" when it may be DICOM.
std::string NonDicomKind(absl::string_view head);

//! The message for a file of that kind sent as DICOM (names the kind, says what to do instead).
std::string NotDicomMessage(absl::string_view kind);

}  // namespace rdg::formats
