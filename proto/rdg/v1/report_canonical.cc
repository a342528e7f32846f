#include "rdg/v1/report_canonical.h"

#include <ctime>

namespace rdg::v1 {
namespace {

void Line(std::string& out, const char* key, const std::string& value) {
  out += key;
  out += ": ";
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  out += '\n';
}

std::string Rfc3339(int64_t seconds) {
  std::time_t secs = seconds;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string CanonicalReportBytes(const ReportContent& c) {
  std::string out = "RDG-REPORT-V1\n";
  Line(out, "exam_id", c.exam_id());
  Line(out, "status", ReportStatus_Name(c.status()));
  Line(out, "reader_user", c.reader_user());
  Line(out, "reader_institution", c.reader_institution());
  Line(out, "signed_at", Rfc3339(c.signed_at().seconds()));
  Line(out, "critical", c.critical() ? "true" : "false");
  Line(out, "supersedes", c.supersedes_report_id());
  Line(out, "findings", c.findings());
  Line(out, "impression", c.impression());
  // Added after version 1's first reports, each present only when set, so earlier bytes stand.
  if (!c.amendment_reason().empty()) Line(out, "amendment_reason", c.amendment_reason());
  if (!c.desk().empty()) Line(out, "desk", c.desk());
  return out;
}

std::string ReportReceiptBytes(const ReportReceipt& r) {
  std::string out = "RDG-RECEIPT-V1\n";
  Line(out, "report_id", r.report_id);
  Line(out, "version", std::to_string(r.version));
  Line(out, "exam_id", r.exam_id);
  Line(out, "origin_institution", r.origin_institution);
  Line(out, "reader_user", r.reader_user);
  Line(out, "reader_institution", r.reader_institution);
  Line(out, "desk", r.desk);
  Line(out, "accepted_at", Rfc3339(r.accepted_at_unix));
  Line(out, "issued_at", Rfc3339(r.issued_at_unix));
  Line(out, "report_sha256", r.report_sha256);
  return out;
}

}  // namespace rdg::v1
