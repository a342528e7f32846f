#include "clients/clinic/report_folder.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "clients/common/report_crypto.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/digest.h"
#include "storage/base/posix_file.h"
#include "storage/documents/report_pdf.h"

namespace rdg::clients {

namespace {

bool ReadBytes(const std::string& path, std::string* out) {
  auto bytes = storage::ReadWholeFile(path, "");
  if (!bytes.ok()) return false;
  *out = *std::move(bytes);
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
                       const std::string& expected_origin, absl::TimeZone zone, ReportFolder* out,
                       std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  const auto& r = d.report();
  const bool sm2 = r.signature().format() == rdg::v1::SM2_SM3_RAW;
  const fs::path folder(dir);
  // A folder written before may hold the other format's signature: it would be checked instead.
  fs::remove(folder / (sm2 ? "report.p7s" : "report.sm2.sig"), ec);
  for (const auto& [name, bytes] :
       {std::pair<const char*, const std::string&>{"report.txt", r.canonical_bytes()},
        {sm2 ? "report.sm2.sig" : "report.p7s", r.signature().signature()},
        {"signer.pem", r.signature().signer_certificate_pem()},
        {"receipt.txt", d.receipt()},
        {"receipt.p7s", d.receipt_signature()}}) {
    if (!WriteBytes((folder / name).string(), bytes, error)) return false;
  }
  // For people: which report this is (nothing here is trusted by the checks).
  const nlohmann::json delivery = {{"report_id", r.report_id()}, {"version", r.version()}};
  if (!WriteBytes((folder / "delivery.json").string(), delivery.dump(2) + "\n", error)) {
    return false;
  }
  std::string detail;
  VerifyReportFolder(dir, ca_path, expected_exam, expected_origin, out, &detail);
  // What the PDF prints comes from the content fields: they must be exactly what was signed.
  if (out->verified && rdg::v1::CanonicalReportBytes(r.content()) != r.canonical_bytes()) {
    out->verified = false;
    out->detail = "the report's fields differ from the signed text (report.txt is what was signed)";
  }

  documents::ReportPrintout printout;
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
  absl::StatusOr<std::string> pdf = documents::RenderReportPdf(printed, printout);
  const std::string pdf_path = (folder / "report.pdf").string();
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
                        const std::string& expected_exam, const std::string& expected_origin,
                        ReportFolder* out, std::string* detail) {
  namespace fs = std::filesystem;
  const fs::path folder(dir);
  out->text = (folder / "report.txt").string();
  out->certificate = (folder / "signer.pem").string();
  out->receipt = (folder / "receipt.txt").string();
  out->receipt_signature = (folder / "receipt.p7s").string();
  const std::string p7s = (folder / "report.p7s").string();
  const std::string sm2 = (folder / "report.sm2.sig").string();
  std::error_code ec;
  out->sm2 = !fs::exists(p7s, ec) && fs::exists(sm2, ec);
  out->signature = out->sm2 ? sm2 : p7s;
  out->verified = false;
  out->exam_id = expected_exam;
  std::string canonical, signature, certificate, receipt, receipt_signature;
  std::map<std::string, std::string> said;  // what the gateway's receipt says
  absl::Time accepted_at;
  std::string ignored;
  if (!ReadBytes(out->text, &canonical) || !ReadBytes(out->signature, &signature)) {
    *detail = "the folder holds no report.txt and report.p7s or report.sm2.sig";
  } else if (!ReadBytes(out->receipt, &receipt) ||
             !ReadBytes(out->receipt_signature, &receipt_signature)) {
    *detail =
        "the folder holds no gateway receipt (receipt.txt, receipt.p7s): it proves nothing "
        "about which exam the report is for or when it was signed; save it again with "
        "rdg-clinic report";
  } else if (!VerifyReceipt(receipt, receipt_signature, ca_path, &said, detail)) {
    // detail names the failure
  } else if (!expected_exam.empty() && said["exam_id"] != expected_exam) {
    *detail = "the report is for exam " + said["exam_id"] + ", not " + expected_exam;
  } else if (!expected_origin.empty() && said["origin_institution"] != expected_origin) {
    out->exam_id = said["exam_id"];  // what the genuine receipt says, to print
    out->origin_institution = said["origin_institution"];
    *detail = "the report is for an exam of " + said["origin_institution"] + ", not of " +
              expected_origin + " (verify it with --origin " + said["origin_institution"] +
              " if that is what you meant)";
  } else if (!absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", said["accepted_at"], &accepted_at, &ignored)) {
    *detail = "the gateway's receipt gives no acceptance time";
  } else {
    ReadBytes(out->certificate, &certificate);  // CMS carries its signer; SM2 needs the file
    ReportExpectations expect;
    expect.exam_id = said["exam_id"];
    expect.accepted_at = accepted_at;
    expect.desk = said["desk"];
    out->exam_id = expect.exam_id;
    out->origin_institution = said["origin_institution"];
    out->accepted_at = accepted_at;
    out->verified = VerifySignedReport(
        canonical, out->sm2 ? rdg::v1::SM2_SM3_RAW : rdg::v1::CMS_DETACHED_ECDSA_SHA256, signature,
        certificate, ca_path, expect, detail);
    // Last, so that a reader's own forgery is named for what is wrong with it first.
    if (out->verified && said["report_sha256"] != storage::ToHex(storage::Sha256::Of(canonical))) {
      out->verified = false;
      *detail =
          "the gateway's receipt is for other bytes than report.txt (its report_sha256 "
          "differs): this is not the report the gateway accepted";
    }
    if (out->verified) {
      *detail += "; exam " + expect.exam_id + " of " + out->origin_institution +
                 ", accepted by the gateway at " + said["accepted_at"] + " (its signed receipt)";
    }
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
        << folder.text << " -CAfile " << ca_path << " -purpose smimesign" << attime << " -signer "
        << signer << " -out /dev/null\n"
        << "  openssl x509 -in " << signer << " -noout -subject -ext keyUsage\n";
  }
  const std::string gateway = dir + "/receipt-by.pem";
  // The receipt's chain as it stood when the gateway made it (as rdg-clinic checks it).
  std::string receipt_text, receipt_attime;
  ReadBytes(folder.receipt, &receipt_text);
  const auto said = ReceiptFields(receipt_text);
  if (absl::Time issued_at;
      said.count("issued_at") &&
      absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", said.at("issued_at"), &issued_at, &ignored)) {
    receipt_attime = " -attime " + std::to_string(absl::ToUnixSeconds(issued_at));
  }
  out << "  grep -E '^(exam_id|reader_user|reader_institution|desk|signed_at): ' " << folder.text
      << "\n"
      << "  openssl cms -verify -binary -inform DER -in " << folder.receipt_signature
      << " -content " << folder.receipt << " -CAfile " << ca_path << " -purpose any"
      << receipt_attime << " -signer " << gateway << " -out /dev/null\n"
      << "  openssl x509 -in " << gateway << " -noout -subject\n"
      << "  openssl dgst -sha256 -r " << folder.text << "\n"
      << "  grep -E '^(exam_id|origin_institution|desk|accepted_at|report_sha256): ' "
      << folder.receipt << "\n"
      << "then check: the report's signer subject is OU=reader with the O and CN report.txt names "
         "as reader_institution and reader_user; its key usage includes Digital Signature and "
         "Non Repudiation; the receipt's signer subject is OU=gateway; the receipt's "
         "report_sha256 is report.txt's SHA-256; exam_id and desk are the same in both files"
      << (folder.exam_id.empty() ? std::string() : " (exam " + folder.exam_id + ")")
      << "; signed_at is within " << absl::ToInt64Minutes(kSignedAtTolerance)
      << " minutes of the gateway's receipt, accepted_at "
      << (folder.accepted_at
              ? absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *folder.accepted_at, absl::UTCTimeZone())
              : std::string("(unknown)"))
      << "\n";
  return out.str();
}

}  // namespace rdg::clients
