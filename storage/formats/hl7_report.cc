#include "storage/formats/hl7_report.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/formats/hl7_internal.h"

namespace rdg::formats {
namespace {

using hl7_internal::Delimiters;
using hl7_internal::Escape;

const Delimiters& Standard() {
  static const Delimiters d;
  return d;
}

//! `text` escaped for a field. Line ends (CR LF, CR, LF) become one \.br\; other control
//! characters (which could end a segment or an MLLP frame) become U+FFFD, as in the printed report.
std::string E(absl::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r') {
      clean += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) {
      clean += "\xEF\xBF\xBD";
    } else {
      clean += static_cast<char>(c);
    }
  }
  return Escape(clean, Standard());
}

//! TS with seconds and the zone's offset, e.g. "20261201181530+0800"; empty for an unset time.
std::string Ts(absl::Time t, absl::TimeZone zone) {
  if (t == absl::InfinitePast() || t == absl::UnixEpoch()) return "";
  return absl::FormatTime("%Y%m%d%H%M%S%z", t, zone);
}

//! The components of one PN group ("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX"), padded to five.
std::vector<std::string> PnComponents(absl::string_view group) {
  std::vector<std::string> c = absl::StrSplit(group, '^');
  c.resize(5);
  return c;
}

//! DICOM PN groups (alphabetic=ideographic=phonetic) as XPN repetitions, the ideographic name
//! first (what a Chinese HIS shows): family^given^middle^suffix^prefix^^L^<I|A|P>.
std::string Xpn(absl::string_view pn) {
  const std::vector<absl::string_view> groups = absl::StrSplit(pn, '=');
  static constexpr const char* kRepresentation[] = {"A", "I", "P"};
  std::vector<std::string> repetitions;
  for (size_t order : {size_t{1}, size_t{0}, size_t{2}}) {
    if (order >= groups.size() || groups[order].empty()) continue;
    const auto c = PnComponents(groups[order]);
    repetitions.push_back(absl::StrCat(E(c[0]), "^", E(c[1]), "^", E(c[2]), "^", E(c[4]), "^",
                                       E(c[3]), "^^L^", kRepresentation[order]));
  }
  return absl::StrJoin(repetitions, "~");
}

//! The reader as OBR-32 (NDL whose first component is a CNN): id&family&given.
std::string Interpreter(absl::string_view user, absl::string_view pn) {
  const std::vector<absl::string_view> groups = absl::StrSplit(pn, '=');
  const absl::string_view group = groups.size() > 1 && !groups[1].empty() ? groups[1] : groups[0];
  const auto c = PnComponents(group);
  return absl::StrCat(E(user), "&", E(c[0]), "&", E(c[1]));
}

}  // namespace

std::string BuildReportOru(const ReportMessageInput& r) {
  const std::string status = r.amended ? "C" : "F";  // HL7 table 0085/0123: corrected, final
  const std::string signed_ts = Ts(r.signed_at, r.zone);
  const std::string filler = absl::StrCat(E(r.filler_order_number), "^RDG");
  std::vector<std::string> segments;
  segments.push_back(absl::StrCat("MSH|^~\\&|RDG|", E(r.sending_facility), "|",
                                  E(r.receiving_application), "|", E(r.receiving_facility), "|",
                                  Ts(r.sent_at, r.zone), "||ORU^R01^ORU_R01|", E(r.control_id),
                                  "|P|2.5.1|||AL|NE||UNICODE UTF-8"));
  segments.push_back(absl::StrCat("PID|1||", E(r.patient_id), "^^^", E(r.issuer_of_patient_id),
                                  "||", Xpn(r.patient_name), "||", E(r.birth_date), "|", E(r.sex)));
  segments.push_back(absl::StrCat("ORC|RE|", E(r.placer_order_number), "|", filler, "||CM"));
  // OBR-1..7, 8..21 empty, 22 results reported, 24 section, 25 status, 32 interpreter.
  segments.push_back(absl::StrCat("OBR|1|", E(r.placer_order_number), "|", filler, "|",
                                  E(r.service_code), "^", E(r.service_text), "^L|||",
                                  E(r.observed_at), std::string(15, '|'), signed_ts, "||",
                                  E(r.diagnostic_section), "|", status, std::string(7, '|'),
                                  Interpreter(r.reader_user, r.reader_name)));
  int set_id = 0;
  auto obx = [&](absl::string_view value_type, absl::string_view code, absl::string_view value,
                 absl::string_view abnormal) {
    segments.push_back(absl::StrCat("OBX|", ++set_id, "|", value_type, "|", code, "||", value,
                                    "|||", abnormal, "|||", status, "|||", signed_ts));
  };
  // FT: formatted text, where \.br\ is a line break.
  if (!r.findings.empty()) obx("FT", "59776-5^Procedure Findings^LN", E(r.findings), "");
  obx("FT", "19005-8^Impressions^LN", E(r.impression), r.critical ? "AA" : "");
  if (r.amended && !r.amendment_reason.empty()) {
    obx("FT", "55107-7^Addendum^LN", E(r.amendment_reason), "");
  }
  if (!r.signed_report_pointer.empty()) {
    obx("RP", "SIGNED-REPORT^Signed report^99RDG",
        absl::StrCat(E(r.signed_report_pointer), "^RDG^TEXT^PLAIN"), "");
  }
  return absl::StrCat(absl::StrJoin(segments, "\r"), "\r");
}

}  // namespace rdg::formats
