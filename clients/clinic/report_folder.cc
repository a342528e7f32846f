#include "clients/clinic/report_folder.h"

#include <filesystem>
#include <fstream>

#include "clients/common/report_crypto.h"

namespace rdg::clients {

bool WriteReportFolder(const rdg::v1::DeliveredReport& d, const std::string& dir,
                       const std::string& ca_path, ReportFolder* out, std::string* error) {
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
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
    if (!f.flush()) {
      *error = "cannot write " + path;
      return false;
    }
  }
  out->verified = VerifyReport(r, ca_path, &out->detail);
  return true;
}

}  // namespace rdg::clients
