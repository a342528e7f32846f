#include "clients/reader/ecg_tracing.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/formats/ecg_render.h"
#include "gateway/formats/ecg_waveform.h"

namespace rdg::clients {
namespace {

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
      return absl::UnavailableError(absl::StrCat("cannot write ", path));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Render(const formats::EcgRecording& ecg, bool png) {
  if (png) return formats::RenderEcgPng(ecg);
  return formats::RenderEcgSvg(ecg);
}

}  // namespace

absl::Status RenderEcgFile(const std::string& dicom_path, const std::string& out_path) {
  const bool png = absl::EndsWithIgnoreCase(out_path, ".png");
  if (!png && !absl::EndsWithIgnoreCase(out_path, ".svg")) {
    return absl::InvalidArgumentError("--out must name a .svg or a .png file");
  }
  auto ecg = formats::ParseEcgWaveformFile(dicom_path);
  if (!ecg.ok()) return ecg.status();
  auto bytes = Render(*ecg, png);
  if (!bytes.ok()) return bytes.status();
  return WriteFile(out_path, *bytes);
}

absl::StatusOr<std::vector<std::string>> WriteEcgTracings(const std::string& dicom_path,
                                                          const std::string& base) {
  auto ecg = formats::ParseEcgWaveformFile(dicom_path);
  if (!ecg.ok()) return ecg.status();
  std::vector<std::string> written;
  for (bool png : {false, true}) {
    auto bytes = Render(*ecg, png);
    if (!bytes.ok()) return bytes.status();
    const std::string path = base + (png ? ".png" : ".svg");
    if (auto s = WriteFile(path, *bytes); !s.ok()) return s;
    written.push_back(path);
  }
  return written;
}

}  // namespace rdg::clients
