#include "clients/clinic/report_folder.h"

#include <filesystem>
#include <fstream>

#include "clients/common/report_crypto.h"
#include "clients/common/report_pdf.h"
#include "rdg/v1/report_canonical.h"

namespace rdg::clients {

namespace {

bool WriteBytes(const std::string& path, const std::string& bytes, std::string* error) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  if (!f.flush()) {
    *error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace

bool WriteReportFolder(const rdg::v1::DeliveredReport& d, const std::string& dir,
                       const std::string& ca_path, absl::TimeZone zone, ReportFolder* out,
                       std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  const auto& r = d.report();
  out->sm2 = r.signature().format() == rdg::v1::SM2_SM3_RAW;
  out->text = (fs::path(dir) / "report.txt").string();
  out->signature = (fs::path(dir) / (out->sm2 ? "report.sm2.sig" : "report.p7s")).string();
  out->certificate = (fs::path(dir) / "signer.pem").string();
  for (const auto& [path, bytes] :
       {std::pair<const std::string&, const std::string&>{out->text, r.canonical_bytes()},
        {out->signature, r.signature().signature()},
        {out->certificate, r.signature().signer_certificate_pem()}}) {
    if (!WriteBytes(path, bytes, error)) return false;
  }
  out->verified = VerifyReport(r, ca_path, &out->detail);
  // What the PDF prints comes from the content fields: they must be exactly what was signed.
  if (out->verified && rdg::v1::CanonicalReportBytes(r.content()) != r.canonical_bytes()) {
    out->verified = false;
    out->detail = "the report's fields differ from the signed text (report.txt is what was signed)";
  }

  ReportPrintout printout;
  printout.signature_verified = out->verified;
  printout.signature_detail = out->detail;
  printout.signer_fingerprint = CertificateFingerprint(r.signature().signer_certificate_pem());
  std::string institution, user, ignored;
  if (CertificateIdentity(out->certificate, &institution, &user, &ignored)) {
    printout.signer_name = user;
  }
  printout.zone = zone;
  rdg::v1::DeliveredReport printed = d;
  if (printed.exam().exam_id() != r.content().exam_id()) {
    printed.clear_exam();  // never print another exam's patient beside this report
  }
  absl::StatusOr<std::string> pdf = RenderReportPdf(printed, printout);
  const std::string pdf_path = (fs::path(dir) / "report.pdf").string();
  if (!pdf.ok()) {
    out->pdf_error = std::string(pdf.status().message());
  } else if (std::string pdf_error; !WriteBytes(pdf_path, *pdf, &pdf_error)) {
    out->pdf_error = pdf_error;
  } else {
    out->pdf = pdf_path;
  }
  return true;
}

}  // namespace rdg::clients
