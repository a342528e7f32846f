// DICOMweb (PS3.18) for viewers (Weasis, OHIF) and PACS (Orthanc's DICOMweb plugin): QIDO-RS
// search and WADO-RS retrieval over HTTPS on dicomweb.listen, with the platform's client
// certificates (required) and the same access as the gRPC API (study_access.h). Paths under
// /dicomweb:
//
//   GET studies[?PatientID=…&PatientName=…&StudyDate=…&AccessionNumber=…&StudyInstanceUID=…
//               &ModalitiesInStudy=…&limit=…&offset=…]             QIDO-RS, application/dicom+json
//   GET studies/{study}/series, studies/{study}[/series/{series}]/instances
//   GET studies/{study}[/series/{series}[/instances/{instance}]]   WADO-RS: multipart/related;
//                                                                   type="application/dicom"
//   GET …/metadata                                                  application/dicom+json
//   GET studies/{s}/series/{se}/instances/{i}/bulkdata/{GGGGEEEE}  a bulk data value
//
// Instances are sent as they are stored (the part's transfer-syntax parameter names theirs),
// streamed from their blob files — a study is never held in memory. Browsers of the origins in
// dicomweb.cors_origins may call it (CORS).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/institution_directory.h"
#include "gateway/dicomweb/study_access.h"
#include "rdg/v1/config.pb.h"
#include "storage/file_blob_store.h"
#include "storage/index/exam_store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib
namespace rdg::http {
class Listening;
}  // namespace rdg::http

namespace rdg::dicomweb {

class DicomWebServer {
 public:
  struct Dependencies {
    StudyAccess& access;
    storage::ExamStore& exams;
    const storage::FileBlobStore& blobs;
    const config::InstitutionDirectory& directory;
    //! Whether a client certificate (PEM) was revoked; none: never.
    std::function<bool(absl::string_view pem)> revoked;
  };
  static absl::StatusOr<std::unique_ptr<DicomWebServer>> Start(
      const rdg::v1::DicomWebConfig& config, const rdg::v1::TlsConfig& tls, Dependencies deps);
  ~DicomWebServer();

  int port() const;

 private:
  DicomWebServer(const rdg::v1::DicomWebConfig& config, Dependencies deps);
  void Route(httplib::Server& server);

  const rdg::v1::DicomWebConfig config_;
  Dependencies deps_;
  std::unique_ptr<http::Listening> listening_;
};

}  // namespace rdg::dicomweb
