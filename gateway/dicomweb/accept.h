// What a DICOMweb client accepts (the Accept header, RFC 9110 12.5.1, with PS3.18 8.7's
// multipart/related "type" and "transfer-syntax" parameters), so that an answer is given only
// in a form the client asked for, and a form RDG cannot give is refused with 406 rather than
// sent anyway.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rdg::dicomweb {

struct MediaRange {
  std::string type;                           //!< lower case, e.g. "multipart/related", "*/*"
  std::map<std::string, std::string> params;  //!< names lower case, values unquoted
  double q = 1;
};

//! The media ranges of an Accept value, in order; q=0 ranges are left out.
std::vector<MediaRange> ParseAccept(absl::string_view accept);

//! Whether a single-part answer of `type` (e.g. "application/dicom+json") is acceptable: no
//! Accept, "*/*", "application/*" or the type itself.
bool AcceptsType(absl::string_view accept, absl::string_view type);

//! Whether a multipart/related answer whose parts are `part_type` in `transfer_syntax` (a UID;
//! empty: none applies) is acceptable: no Accept, "*/*", "multipart/related" with no "type" or
//! that type, and no "transfer-syntax", "*" or that UID. A bare `part_type` is accepted too
//! (clients ask "application/dicom" for an instance and read the multipart answer). Absent, the
//! transfer syntax is read as "*": RDG sends what it stores and does not transcode.
bool AcceptsMultipart(absl::string_view accept, absl::string_view part_type,
                      absl::string_view transfer_syntax);

}  // namespace rdg::dicomweb
