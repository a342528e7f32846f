// DICOMweb (PS3.18) for viewers (Weasis, OHIF) and PACS (Orthanc's DICOMweb plugin): QIDO-RS
// search, WADO-RS retrieval and STOW-RS over HTTPS on dicomweb.listen, with the platform's
// client certificates (asked for in every handshake; every request without one but a browser's
// CORS preflight is 401) and the same access as the gRPC API (study_access.h). Paths under
// /dicomweb:
//
//   GET studies[?PatientID=…&PatientName=…&StudyDate=…&AccessionNumber=…&StudyInstanceUID=…
//               &ModalitiesInStudy=…&limit=…&offset=…]             QIDO-RS, application/dicom+json
//   GET studies/{study}/series, studies/{study}[/series/{series}]/instances
//   GET studies/{study}[/series/{series}[/instances/{instance}]]   WADO-RS: multipart/related;
//                                                                   type="application/dicom"
//   GET …/metadata                                                  application/dicom+json
//   GET studies/{s}/series/{se}/instances/{i}/frames/{n[,n…]}      frames, as stored
//   GET studies/{s}/series/{se}/instances/{i}/bulkdata/{GGGGEEEE}  a bulk data value
//   POST studies[/{study}]   STOW-RS: multipart/related; type="application/dicom" (a clinic's,
//                  stored and routed as a gRPC upload, stow.h; one upload slot per request, under
//                  the same limits as gRPC uploads, else 503 with Retry-After)
//
// Instances and frames are sent as they are stored (each part's transfer-syntax parameter names
// theirs); RDG does not transcode, so a client that asks for another transfer syntax is answered
// 406 (accept.h). Instances are streamed from their blob files — a study is never held in memory.
// Browsers of the origins in dicomweb.cors_origins may call it (CORS).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/institution_directory.h"
#include "gateway/dicomweb/study_access.h"
#include "gateway/ingest/ingestor.h"
#include "gateway/ingest/upload_slots.h"
#include "rdg/v1/config.pb.h"
#include "storage/file_blob_store.h"
#include "storage/index/exam_store.h"

namespace httplib {
class Server;
class ContentReader;
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
    //! STOW-RS stores through it (none: STOW-RS is refused), staging parts in `staging_dir`.
    ingest::Ingestor* ingestor = nullptr;
    //! A STOW-RS request holds one upload slot while it is read (shared with gRPC uploads).
    ingest::UploadSlots* slots = nullptr;
    std::string staging_dir;
    int64_t max_object_bytes = 0;
  };
  static absl::StatusOr<std::unique_ptr<DicomWebServer>> Start(
      const rdg::v1::DicomWebConfig& config, const rdg::v1::TlsConfig& tls, Dependencies deps);
  ~DicomWebServer();

  int port() const;

 private:
  DicomWebServer(const rdg::v1::DicomWebConfig& config, Dependencies deps);
  void Route(httplib::Server& server);
  //! POST studies[/{study}]: the instances of a multipart/related body, each stored as an
  //! upload (`study`: those of another study fail).
  absl::Status Stow(const auth::Principal& who, const std::string& study,
                    const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& content);

  const rdg::v1::DicomWebConfig config_;
  Dependencies deps_;
  std::unique_ptr<http::Listening> listening_;
};

}  // namespace rdg::dicomweb
