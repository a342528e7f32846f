// The upload engine of rdg-clinic: finds DICOM files and HL7 lab message files, uploads them in
// parallel through resumable sessions, retries transient failures with backoff, and reports one
// result per object (a DICOM file, or one message of an HL7 file).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clients/common/output.h"
#include "rdg/v1/ingest.grpc.pb.h"

namespace rdg::clients {

struct UploadOptions {
  int parallel = 4;
  rdg::v1::Priority priority = rdg::v1::PRIORITY_UNSPECIFIED;
  int64_t chunk_bytes = 1 << 20;    //!< also the one-message threshold for small files
  int max_attempts = 8;             //!< per file, for transient failures
  double max_bytes_per_second = 0;  //!< 0: unlimited (vans on mobile data set a cap)
  //! Asked at most once, when an attempt fails as a connection closed at the handshake: why the
  //! gateway refused it (then nothing is retried and every file fails with UNAUTHENTICATED), or
  //! nullopt for a network failure (retried). Not set: such failures are retried.
  std::function<std::optional<std::string>()> explain_refusal;
};

//! One object to upload: a DICOM file, or one message of an HL7 file (held in memory; lab
//! messages are small and an HL7 file may hold several, MLLP-framed or not).
struct UploadItem {
  std::string path;
  std::string label;  //!< path, or "path#N" for the N-th message of an HL7 file
  rdg::v1::ObjectKind kind = rdg::v1::DICOM;
  std::optional<std::string> data;  //!< the message bytes; DICOM files are read from disk
  //! Why the file is refused here, without sending it (a JPEG, an empty file, an .hl7 file
  //! without a message); empty when it is to be uploaded.
  std::string refusal;
};

struct FileResult {
  std::string path;
  std::string label;  //!< the item's label
  rdg::v1::ObjectKind kind = rdg::v1::DICOM;
  int64_t size = 0;
  bool ok = false;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;  //!< why it was rejected or failed
  bool busy = false;    //!< failed because the gateway was busy, not unreachable
  rdg::v1::CommittedObject committed;
  int64_t resumed_from = 0;  //!< committed offset found at the gateway before sending
  int64_t bytes_sent = 0;    //!< payload bytes this run sent for the file
  int attempts = 0;
  //! Lab messages: the gateway's HL7 acknowledgement (AA, or AE/AR with the reason), also when
  //! the message was rejected.
  std::optional<rdg::v1::Hl7Acknowledgement> hl7_ack;
};

struct Discovery {
  std::vector<std::string> files;    //!< to upload, sorted
  std::vector<std::string> skipped;  //!< found in folders but not DICOM (or a DICOMDIR)
  std::vector<std::string> missing;  //!< named on the command line but not there
};

//! Walks `paths`: named files are always taken; files inside folders are taken when they carry
//! the DICOM Part 10 marker ("DICM" at byte 128), a .dcm/.dicom extension, or a .hl7 extension;
//! DICOMDIRs skipped.
Discovery DiscoverFiles(const std::vector<std::string>& paths);

//! Turns files into upload items: a file named *.hl7, or starting with "MSH" or an MLLP frame,
//! is an HL7 file and gives one item per message; anything else is one DICOM item. Files that
//! cannot be what they are sent as (empty, an HL7 file without a message, a JPEG/PNG/PDF/ZIP or
//! text sent as DICOM) become items with a `refusal`, reported like the gateway's refusals.
std::vector<UploadItem> ItemsFromFiles(const std::vector<std::string>& files);

//! Uploads every item; never throws; results are in the order of `items`.
std::vector<FileResult> UploadFiles(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::vector<UploadItem>& items,
                                    const UploadOptions& options, Progress* progress);

}  // namespace rdg::clients
