// What the outbound queue's jobs send (gateway/outbound/payloads.h), made from the index: the
// exam's stored instances (their blob files, sent as stored), the report version as a Basic Text
// SR and as an Encapsulated PDF (the printed 诊断报告单 a clinic files), and as an HL7 ORU^R01.
// Everything is rebuilt at each attempt and comes out the same: DICOM UIDs are derived from the
// report version, the HL7 control id from the job.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/config/institution_directory.h"
#include "gateway/outbound/payloads.h"
#include "storage/file_blob_store.h"
#include "storage/index/exam_store.h"
#include "storage/index/report_store.h"

namespace rdg::api {

class IndexPayloads final : public outbound::Payloads {
 public:
  struct Stores {
    storage::ExamStore& exams;
    storage::ReportStore& reports;
  };
  IndexPayloads(Stores stores, const storage::FileBlobStore& blobs,
                const config::InstitutionDirectory& directory, std::string platform_name,
                absl::TimeZone zone)
      : stores_(stores),
        blobs_(blobs),
        directory_(directory),
        platform_name_(std::move(platform_name)),
        zone_(zone) {}

  absl::StatusOr<std::vector<outbound::DicomObject>> DicomObjectsOf(
      const storage::OutboundJob& job) override;
  absl::StatusOr<std::string> MessageOf(const storage::OutboundJob& job,
                                        const outbound::Destination& destination) override;

 private:
  struct Subject;
  absl::StatusOr<Subject> Load(const storage::OutboundJob& job);

  Stores stores_;
  const storage::FileBlobStore& blobs_;
  const config::InstitutionDirectory& directory_;
  const std::string platform_name_;
  const absl::TimeZone zone_;
};

}  // namespace rdg::api
