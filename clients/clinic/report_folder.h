// A delivered report written to a folder as signed — canonical text, signature, signer
// certificate, and the gateway's signed receipt — verified with the platform CA alone, and
// printed to report.pdf (the 诊断报告单 people file). Used by `rdg-clinic report` and by the edge
// agent's inbox.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "rdg/v1/delivery.pb.h"

namespace rdg::clients {

struct ReportFolder {
  std::string text;               //!< report.txt
  std::string signature;          //!< report.p7s (CMS) or report.sm2.sig (SM2)
  std::string certificate;        //!< signer.pem
  std::string receipt;            //!< receipt.txt (the gateway's receipt)
  std::string receipt_signature;  //!< receipt.p7s
  bool verified = false;
  std::string detail;  //!< who signed, or why the signature does not verify
  bool sm2 = false;
  std::string pdf;  //!< report.pdf; empty when it could not be drawn (see pdf_error)
  std::string pdf_error;
  std::string exam_id;                    //!< the exam the report was checked for (the receipt's)
  std::string origin_institution;         //!< whose exam it is (the receipt's)
  std::optional<absl::Time> accepted_at;  //!< when the gateway accepted it (the receipt's)
};

//! Writes the three signed files and the gateway's receipt (receipt.txt, receipt.p7s) into `dir`
//! (created), verifies the folder as VerifyReportFolder does (`expected_exam` empty: the exam the
//! receipt names), then prints report.pdf with the verification result and times in `zone`.
//! Returns false with `error` set when a file cannot be written; a PDF that cannot be drawn only
//! sets `out->pdf_error` (the signed report is what counts).
bool WriteReportFolder(const rdg::v1::DeliveredReport& d, const std::string& dir,
                       const std::string& ca_path, const std::string& expected_exam,
                       const std::string& expected_origin, absl::TimeZone zone, ReportFolder* out,
                       std::string* error);

//! Verifies a saved report folder offline with the platform CA alone: the gateway's receipt
//! (clients::VerifyReceipt) names the SHA-256 of exactly report.txt, the exam (which must be
//! `expected_exam` when given) and the clinic it belongs to (which must be `expected_origin`
//! when given: a clinic's own institution), the desk and the acceptance time; then the reader's
//! signature (report.p7s or report.sm2.sig, signer.pem) is checked against what the receipt says
//! (clients::VerifySignedReport). A folder without a valid receipt proves nothing about which
//! exam it is for or when it was signed. False with `detail` naming what failed.
bool VerifyReportFolder(const std::string& dir, const std::string& ca_path,
                        const std::string& expected_exam, const std::string& expected_origin,
                        ReportFolder* out, std::string* detail);

//! The openssl commands (and what to compare by eye) that check `folder` without RDG: the
//! signature and chain at signed_at for the S/MIME signing purpose (readers' certificates carry
//! emailProtection, clinics' and the gateway's do not), the signature's own signer's subject and
//! key usage, the signed exam, reader and signing time against the receipt; the receipt's own
//! signature, signer and SHA-256.
std::string OpensslCommands(const ReportFolder& folder, const std::string& ca_path);

}  // namespace rdg::clients
