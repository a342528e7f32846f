// One object's way into the gateway through the resumable upload sessions of IngestService, one
// attempt at a time. Shared by `rdg-clinic upload` (which retries a while, then reports) and the
// edge agent's forwarder (which retries for as long as it takes and persists the session id, so
// a restart resumes from the committed offset).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "rdg/v1/ingest.grpc.pb.h"

namespace rdg::clients {

//! Shared token bucket: caps the payload rate of all upload threads together.
class RateLimiter {
 public:
  explicit RateLimiter(double bytes_per_second) : rate_(bytes_per_second) {}
  //! Blocks until `bytes` may be sent.
  void Take(int64_t bytes);

 private:
  const double rate_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point next_{};
};

//! What to upload. A message in memory (`data`), or a file on disk (`path`).
struct ObjectSource {
  rdg::v1::ObjectKind kind = rdg::v1::DICOM;
  std::string path;
  std::optional<std::string> data;
  int64_t size = 0;
  std::string sha256;  //!< the raw 32-byte SHA-256
  rdg::v1::Priority priority = rdg::v1::PRIORITY_UNSPECIFIED;
};

//! What the attempts so far achieved.
struct UploadOutcome {
  rdg::v1::CommittedObject committed;
  std::optional<rdg::v1::Hl7Acknowledgement> hl7_ack;  //!< lab messages, also when rejected
  std::optional<int64_t> resumed_from;  //!< committed offset found at the first resume
  int64_t bytes_sent = 0;               //!< payload bytes sent, over all attempts
  //! The last attempt handed the gateway the whole object with `commit` ...
  bool commit_sent = false;
  //! ... and its end came from the gateway's upload handler (a verdict, "busy", …), not from a
  //! broken connection or gRPC itself.
  bool answered_by_gateway = false;
};

class ObjectUpload {
 public:
  //! `session_id`: a session opened earlier (e.g. before a restart), or empty.
  ObjectUpload(rdg::v1::IngestService::Stub& stub, RateLimiter& limiter, int64_t chunk_bytes,
               std::string session_id = "")
      : stub_(stub),
        limiter_(limiter),
        chunk_bytes_(chunk_bytes),
        session_id_(std::move(session_id)) {}

  //! Called with each new session id as soon as the gateway gives it (before any byte is sent),
  //! and with "" when the gateway no longer knows the session.
  std::function<void(const std::string&)> on_session;
  //! Called after each chunk is handed to gRPC.
  std::function<void(int64_t)> on_bytes;
  //! When set and true, a running attempt stops before its next chunk (CANCELLED); a persisted
  //! session stays resumable from its committed offset.
  const std::atomic<bool>* cancelled = nullptr;

  //! One attempt: objects above `chunk_bytes` go through a persisted session (opened, or resumed
  //! from its committed offset), smaller ones in a single call. OK means committed at the gateway.
  grpc::Status Attempt(const ObjectSource& source, UploadOutcome& out);

  const std::string& session_id() const { return session_id_; }

 private:
  rdg::v1::OpenUploadRequest OpenRequest(const ObjectSource& source) const;
  grpc::Status Stream(const ObjectSource& source, int64_t offset, rdg::v1::UploadRequest first,
                      UploadOutcome& out);
  void SetSession(std::string id);

  rdg::v1::IngestService::Stub& stub_;
  RateLimiter& limiter_;
  const int64_t chunk_bytes_;
  std::string session_id_;
};

//! The HL7 ACK of a rejected lab message, from the gRPC rich error details (an RpcStatus,
//! wire-compatible with google.rpc.Status, holding an Any with an Hl7Acknowledgement).
std::optional<rdg::v1::Hl7Acknowledgement> AckInErrorDetails(const grpc::Status& status);

//! Failures worth another attempt (the network, the gateway restarting); anything else is the
//! gateway's verdict on the object.
bool Retryable(grpc::StatusCode code);

}  // namespace rdg::clients
