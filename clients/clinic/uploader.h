// The upload engine of rdg-clinic: finds DICOM files, uploads them in parallel through resumable
// sessions, retries transient failures with backoff, and reports one result per file.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clients/common/output.h"
#include "rdg/v1/ingest.grpc.pb.h"

namespace rdg::clients {

struct UploadOptions {
  int parallel = 4;
  rdg::v1::Priority priority = rdg::v1::PRIORITY_UNSPECIFIED;
  int64_t chunk_bytes = 1 << 20;     //!< also the one-message threshold for small files
  int max_attempts = 8;              //!< per file, for transient failures
  double max_bytes_per_second = 0;   //!< 0: unlimited (vans on mobile data set a cap)
};

struct FileResult {
  std::string path;
  int64_t size = 0;
  bool ok = false;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;               //!< why it was rejected or failed
  rdg::v1::CommittedObject committed;
  int64_t resumed_from = 0;          //!< committed offset found at the gateway before sending
  int64_t bytes_sent = 0;            //!< payload bytes this run sent for the file
  int attempts = 0;
};

struct Discovery {
  std::vector<std::string> files;    //!< to upload, sorted
  std::vector<std::string> skipped;  //!< found in folders but not DICOM (or a DICOMDIR)
  std::vector<std::string> missing;  //!< named on the command line but not there
};

//! Walks `paths`: named files are always taken; files inside folders are taken when they carry
//! the DICOM Part 10 marker ("DICM" at byte 128) or a .dcm/.dicom extension; DICOMDIRs skipped.
Discovery DiscoverFiles(const std::vector<std::string>& paths);

//! Uploads every file; never throws; results are in the order of `files`.
std::vector<FileResult> UploadFiles(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::vector<std::string>& files,
                                    const UploadOptions& options, Progress* progress);

}  // namespace rdg::clients
