// One STOW-RS request (POST /dicomweb/studies[/{study}]): each part of the multipart/related body —
// an application/dicom instance — is staged to a file in the data dir while its SHA-256 is
// computed, then stored through the Ingestor exactly as a gRPC upload is: the same durability
// (acknowledged only once the blob and the index row are durable), deduplication, parsing in an
// rdg-parser process, patient-identity rules and routing. Each part's outcome is answered in the
// STOW-RS response (PS3.18 10.5): the stored instances with their RetrieveURL, the failed ones
// with a Failure Reason.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gateway/auth/principal.h"
#include "gateway/ingest/ingestor.h"
#include "storage/base/digest.h"
#include "storage/base/posix_file.h"
#include "storage/index/exam_store.h"

namespace rdg::dicomweb {

class StowRequest {
 public:
  struct Outcome {
    bool stored = false;
    bool duplicate = false;  //!< the same instance was stored before
    std::string sop_class_uid;
    std::string sop_instance_uid;
    std::string study_instance_uid;
    std::string series_instance_uid;  //!< when stored and found again in the index
    bool retry_later = false;     //!< failed for now (index busy, disk full): worth sending again
    uint16_t failure_reason = 0;  //!< PS3.4 C-STORE status when not stored
    std::string detail;
  };
  //! `study`: the Study Instance UID of a POST studies/{study} (instances of another study fail,
  //! unstored), or empty.
  StowRequest(ingest::Ingestor& ingestor, storage::ExamStore& exams, const auth::Principal& who,
              std::string staging_dir, int64_t max_object_bytes, std::string study = {});
  ~StowRequest();
  StowRequest(const StowRequest&) = delete;
  StowRequest& operator=(const StowRequest&) = delete;

  // MultipartReader's callbacks.
  bool Begin(const std::map<std::string, std::string>& headers);
  bool Write(absl::string_view data);
  bool End();

  const std::vector<Outcome>& outcomes() const { return outcomes_; }
  //! The STOW-RS response body (application/dicom+json); `base` is the service's root URL.
  std::string ResponseJson(absl::string_view base) const;
  //! 200 all stored, 202 some failed, 409 none stored (PS3.18 10.5.3); 503 when none was
  //! stored, each only for a failure of the moment (an index busy, a disk full): retry. An
  //! instance too large is 409: sending it again will not help.
  int HttpStatus() const;

 private:
  Outcome Store();
  void Fail(uint16_t reason, std::string detail);
  void Discard();

  ingest::Ingestor& ingestor_;
  storage::ExamStore& exams_;
  const auth::Principal who_;
  const std::string staging_dir_;
  const int64_t max_object_bytes_;
  const std::string study_;

  // The part being read.
  bool skipping_ = false;  //!< refused already: its bytes are read and dropped
  std::string path_;
  storage::File file_;  //!< locked while it lives: a replica's start-up recovery leaves it
  int64_t size_ = 0;
  storage::Sha256 sha_;

  std::vector<Outcome> outcomes_;
};

}  // namespace rdg::dicomweb
