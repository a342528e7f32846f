#include "clients/common/object_files.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clients/common/output.h"
#include "storage/base/digest.h"

namespace rdg::clients {
namespace {
namespace fs = std::filesystem;
}  // namespace

StreamResult WriteObjectStream(grpc::ClientReaderInterface<rdg::v1::ObjectChunk>& reader,
                               const std::string& out_dir) {
  StreamResult result;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    result.status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "cannot create " + out_dir + ": " + ec.message());
    return result;
  }
  Progress progress("receiving", 0, 0);
  std::ofstream file;
  rdg::v1::StoredObject current;
  std::string tmp_path, final_path;
  auto finish_file = [&]() -> bool {
    if (!file.is_open()) return true;
    file.close();
    if (auto digest = storage::Sha256::OfFile(tmp_path);
        !digest.ok() || storage::ToRaw(*digest) != current.sha256()) {
      fs::remove(tmp_path, ec);
      result.status =
          grpc::Status(grpc::StatusCode::DATA_LOSS,
                       current.sop_instance_uid() + " arrived damaged (SHA-256 mismatch)");
      return false;
    }
    fs::rename(tmp_path, final_path, ec);
    result.files.push_back({final_path, current.sop_instance_uid(), current.size(), current});
    return true;
  };
  rdg::v1::ObjectChunk chunk;
  while (reader.Read(&chunk)) {
    if (chunk.has_object()) {
      if (!finish_file()) return result;
      current = chunk.object();
      const char* extension = current.kind() == rdg::v1::HL7V2_LAB ? ".hl7" : ".dcm";
      final_path = (fs::path(out_dir) / (current.sop_instance_uid() + extension)).string();
      tmp_path = final_path + ".part";
      file.open(tmp_path, std::ios::binary | std::ios::trunc);
    }
    file.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    result.bytes += static_cast<int64_t>(chunk.data().size());
    progress.AddBytes(static_cast<int64_t>(chunk.data().size()));
  }
  result.status = reader.Finish();
  if (!result.status.ok()) {
    if (file.is_open()) {
      file.close();
      fs::remove(tmp_path, ec);
    }
    return result;
  }
  finish_file();
  return result;
}

void PrintStreamResult(const StreamResult& result, const std::string& exam_id,
                       const std::string& out_dir, const std::string& verb, bool as_json) {
  if (as_json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : result.files) {
      files.push_back(
          {{"path", f.path}, {"sop_instance_uid", f.sop_instance_uid}, {"size", f.size}});
    }
    std::cout << nlohmann::json({{"exam_id", exam_id},
                                 {"files", files},
                                 {"bytes", result.bytes},
                                 {"rendered", result.rendered}})
                     .dump(2)
              << "\n";
  } else {
    std::cout << verb << " " << result.files.size() << " objects ("
              << HumanBytes(double(result.bytes)) << ") of exam " << exam_id << " to " << out_dir
              << ", SHA-256 verified\n";
    for (const auto& path : result.rendered) std::cout << "rendered " << path << "\n";
  }
}

}  // namespace rdg::clients
