// A delivered report written to a folder as signed — canonical text, signature, signer
// certificate — verified with the platform CA alone, and printed to report.pdf (the 诊断报告单
// people file). Used by `rdg-clinic report` and by the edge agent's inbox.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "rdg/v1/delivery.pb.h"

namespace rdg::clients {

struct ReportFolder {
  std::string text;         //!< report.txt
  std::string signature;    //!< report.p7s (CMS) or report.sm2.sig (SM2)
  std::string certificate;  //!< signer.pem
  bool verified = false;
  std::string detail;       //!< who signed, or why the signature does not verify
  bool sm2 = false;
  std::string pdf;          //!< report.pdf; empty when it could not be drawn (see pdf_error)
  std::string pdf_error;
};

//! Writes the three signed files into `dir` (created), verifies the signature against `ca_path`,
//! then prints report.pdf with the verification result and times in `zone`. Returns false with
//! `error` set when a signed file cannot be written; a PDF that cannot be drawn only sets
//! `out->pdf_error` (the signed report is what counts).
bool WriteReportFolder(const rdg::v1::DeliveredReport& d, const std::string& dir,
                       const std::string& ca_path, absl::TimeZone zone, ReportFolder* out,
                       std::string* error);

}  // namespace rdg::clients
