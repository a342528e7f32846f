#include "clients/clinic/report_folder.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "clients/common/report_crypto.h"
#include "clients/common/report_pdf.h"
#include "rdg/v1/report_canonical.h"

namespace rdg::clients {

namespace {

bool ReadBytes(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

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
                       const std::string& ca_path, const std::string& expected_exam,
                       absl::TimeZone zone, ReportFolder* out, std::string* error) {
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
  out->exam_id = expected_exam.empty() ? r.content().exam_id() : expected_exam;
  nlohmann::json delivery = {{"exam_id", out->exam_id}, {"report_id", r.report_id()},
                             {"version", r.version()}};
  if (r.has_accepted_at()) {
    delivery["accepted_at_unix"] = r.accepted_at().seconds();
    out->accepted_at = absl::FromUnixSeconds(r.accepted_at().seconds());
  }
  if (!WriteBytes((fs::path(dir) / "delivery.json").string(), delivery.dump(2) + "\n", error)) {
    return false;
  }
  out->verified = VerifyReport(r, ca_path, expected_exam, &out->detail);
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

bool VerifyReportFolder(const std::string& dir, const std::string& ca_path,
                        const std::string& expected_exam, ReportFolder* out, std::string* detail) {
  namespace fs = std::filesystem;
  out->text = (fs::path(dir) / "report.txt").string();
  out->certificate = (fs::path(dir) / "signer.pem").string();
  const std::string p7s = (fs::path(dir) / "report.p7s").string();
  const std::string sm2 = (fs::path(dir) / "report.sm2.sig").string();
  std::error_code ec;
  out->sm2 = !fs::exists(p7s, ec) && fs::exists(sm2, ec);
  out->signature = out->sm2 ? sm2 : p7s;
  std::string canonical, signature, certificate, delivery_text;
  if (!ReadBytes(out->text, &canonical) || !ReadBytes(out->signature, &signature)) {
    *detail = "the folder holds no report.txt and report.p7s or report.sm2.sig";
    return false;
  }
  ReadBytes(out->certificate, &certificate);  // CMS carries its signer; SM2 needs the file
  ReportExpectations expect;
  expect.exam_id = expected_exam;
  if (ReadBytes((fs::path(dir) / "delivery.json").string(), &delivery_text)) {
    const nlohmann::json delivery = nlohmann::json::parse(delivery_text, nullptr, false);
    if (delivery.is_object()) {
      if (expect.exam_id.empty() && delivery.contains("exam_id") && delivery["exam_id"].is_string()) {
        expect.exam_id = delivery["exam_id"].get<std::string>();
      }
      if (delivery.contains("accepted_at_unix") && delivery["accepted_at_unix"].is_number_integer()) {
        expect.accepted_at = absl::FromUnixSeconds(delivery["accepted_at_unix"].get<int64_t>());
      }
    }
  }
  out->exam_id = expect.exam_id;
  out->accepted_at = expect.accepted_at;
  if (expect.exam_id.empty()) {
    *detail = "which exam is this report for? delivery.json names none: give --exam";
  } else if (!expect.accepted_at) {
    *detail = "delivery.json gives no receipt time: signed_at cannot be checked against it";
  } else {
    out->verified = VerifySignedReport(
        canonical, out->sm2 ? rdg::v1::SM2_SM3_RAW : rdg::v1::CMS_DETACHED_ECDSA_SHA256,
        signature, certificate, ca_path, expect, detail);
  }
  out->detail = *detail;
  return out->verified;
}

std::string OpensslCommands(const ReportFolder& folder, const std::string& ca_path) {
  namespace fs = std::filesystem;
  std::string text;
  ReadBytes(folder.text, &text);
  const auto fields = CanonicalReportFields(text);
  absl::Time signed_at;
  std::string attime, ignored;
  if (fields.count("signed_at") &&
      absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", fields.at("signed_at"), &signed_at, &ignored)) {
    attime = " -attime " + std::to_string(absl::ToUnixSeconds(signed_at));
  }
  const std::string dir = fs::path(folder.text).parent_path().string();
  std::ostringstream out;
  out << "verify it yourself (openssl only):\n";
  if (folder.sm2) {
    out << "  openssl verify -CAfile " << ca_path << " -purpose smimesign" << attime << " "
        << folder.certificate << "\n"
        << "  openssl x509 -in " << folder.certificate << " -pubkey -noout > " << dir
        << "/signer.pub\n"
        << "  openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678"
        << " -pubin -inkey " << dir << "/signer.pub -in " << folder.text << " -sigfile "
        << folder.signature << "\n"
        << "  openssl x509 -in " << folder.certificate << " -noout -subject -ext keyUsage\n";
  } else {
    const std::string signer = dir + "/signed-by.pem";
    out << "  openssl cms -verify -binary -inform DER -in " << folder.signature << " -content "
        << folder.text << " -CAfile " << ca_path << " -purpose smimesign" << attime
        << " -signer " << signer << " -out /dev/null\n"
        << "  openssl x509 -in " << signer << " -noout -subject -ext keyUsage\n";
  }
  out << "  grep -E '^(exam_id|reader_user|reader_institution|desk|signed_at): ' " << folder.text
      << "\n"
      << "then check: the subject is OU=reader with the O and CN report.txt names as "
         "reader_institution and reader_user; the key usage includes Digital Signature and Non "
         "Repudiation; exam_id is "
      << (folder.exam_id.empty() ? std::string("the exam you expect") : folder.exam_id)
      << "; signed_at is within " << absl::ToInt64Minutes(kSignedAtTolerance)
      << " minutes of the gateway's receipt, "
      << (folder.accepted_at ? absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *folder.accepted_at,
                                                absl::UTCTimeZone())
                             : std::string("(unknown)"))
      << "\n";
  return out.str();
}

}  // namespace rdg::clients
