// A delivered report written to a folder as signed — canonical text, signature, signer
// certificate — verified with the platform CA alone, and printed to report.pdf (the 诊断报告单
// people file). Used by `rdg-clinic report` and by the edge agent's inbox.
#pragma once

#include <optional>
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
  std::string exam_id;      //!< the exam the report was checked for
  std::optional<absl::Time> accepted_at;  //!< the gateway's receipt (delivery.json)
};

//! Writes the three signed files into `dir` (created) and delivery.json (the exam asked for, the
//! report id and version, when the gateway accepted it — what an offline check compares with),
//! verifies the report against `ca_path` (clients::VerifySignedReport; `expected_exam` empty:
//! the exam is not compared), then prints report.pdf with the verification result and times in
//! `zone`. Returns false with `error` set when a file cannot be written; a PDF that cannot be
//! drawn only sets `out->pdf_error` (the signed report is what counts).
bool WriteReportFolder(const rdg::v1::DeliveredReport& d, const std::string& dir,
                       const std::string& ca_path, const std::string& expected_exam,
                       absl::TimeZone zone, ReportFolder* out, std::string* error);

//! Verifies a saved report folder offline, as WriteReportFolder did: report.txt, report.p7s or
//! report.sm2.sig, signer.pem, and delivery.json for the acceptance time (and the exam, unless
//! `expected_exam` is given). Both are required: a folder without them proves nothing about
//! which exam it is for or when it was signed. False with `detail` naming what failed.
bool VerifyReportFolder(const std::string& dir, const std::string& ca_path,
                        const std::string& expected_exam, ReportFolder* out, std::string* detail);

//! The openssl commands (and what to compare by eye) that check `folder` without RDG: the
//! signature and chain at signed_at for the S/MIME signing purpose (readers' certificates carry
//! emailProtection, clinics' and the gateway's do not), the signature's own signer's subject and
//! key usage, the signed exam, reader and signing time against the receipt.
std::string OpensslCommands(const ReportFolder& folder, const std::string& ca_path);

}  // namespace rdg::clients
