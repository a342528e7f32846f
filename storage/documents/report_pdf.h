// The printable report a clinic files: a delivered report as an A4 PDF 诊断报告单 — platform and
// reading institution, patient, exam, findings, impression, a critical banner, the reader, the
// signing time in the clinic's time zone and the signature's verification result and signer
// fingerprint. Drawn with pango + cairo (Debian's libpango1.0-dev) in Noto Sans CJK
// (fonts-noto-cjk). The signed canonical text stays authoritative; the PDF says so.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rdg/v1/delivery.pb.h"

namespace rdg::documents {

//! What the PDF shows besides the delivered report itself.
struct ReportPrintout {
  bool signature_verified = false;
  std::string signature_detail;    //!< who signed, or why the signature does not verify
  std::string signer_name;         //!< CN of the signer certificate
  std::string signer_fingerprint;  //!< SHA-256 of the signer certificate (CertificateFingerprint)
  absl::TimeZone zone = absl::UTCTimeZone();  //!< times are printed in it, with its abbreviation
};

//! The PDF bytes (one or more A4 pages; long findings flow onto further pages, each numbered
//! "第 n 页 / 共 N 页"). INTERNAL when cairo fails.
absl::StatusOr<std::string> RenderReportPdf(const rdg::v1::DeliveredReport& delivered,
                                            const ReportPrintout& printout);

}  // namespace rdg::documents
