// A delivered report written to a folder as signed — canonical text, signature, signer
// certificate — and verified with the platform CA alone. Used by `rdg-clinic report` and by the
// edge agent's inbox.
#pragma once

#include <string>

#include "rdg/v1/delivery.pb.h"

namespace rdg::clients {

struct ReportFolder {
  std::string text;         //!< report.txt
  std::string signature;    //!< report.p7s (CMS) or report.sm2.sig (SM2)
  std::string certificate;  //!< signer.pem
  bool verified = false;
  std::string detail;       //!< who signed, or why the signature does not verify
  bool sm2 = false;
};

//! Writes the three files into `dir` (created) and verifies the signature against `ca_path`.
//! Returns false with `error` set when a file cannot be written.
bool WriteReportFolder(const rdg::v1::DeliveredReport& d, const std::string& dir,
                       const std::string& ca_path, ReportFolder* out, std::string* error);

}  // namespace rdg::clients
