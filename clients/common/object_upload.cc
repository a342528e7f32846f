#include "clients/common/object_upload.h"

#include <algorithm>
#include <fstream>
#include <thread>
#include <utility>

#include "rdg/v1/call_metadata.h"

namespace rdg::clients {

void RateLimiter::Take(int64_t bytes) {
  if (rate_ <= 0) return;
  std::chrono::steady_clock::time_point until;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    next_ = std::max(next_, now);
    until = next_;
    next_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(static_cast<double>(bytes) / rate_));
  }
  std::this_thread::sleep_until(until);  // pacing the sender is this object's purpose
}

std::optional<rdg::v1::Hl7Acknowledgement> AckInErrorDetails(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  rdg::v1::RpcStatus details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const auto& any : details.details()) {
    rdg::v1::Hl7Acknowledgement ack;
    if (any.Is<rdg::v1::Hl7Acknowledgement>() && any.UnpackTo(&ack)) return ack;
  }
  return std::nullopt;
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::ABORTED || code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN;
}

void ObjectUpload::SetSession(std::string id) {
  if (id == session_id_) return;
  session_id_ = std::move(id);
  if (on_session) on_session(session_id_);
}

rdg::v1::OpenUploadRequest ObjectUpload::OpenRequest(const ObjectSource& source) const {
  rdg::v1::OpenUploadRequest open;
  open.set_kind(source.kind);
  open.set_size(source.size);
  open.set_sha256(source.sha256);
  open.set_priority(source.priority);
  return open;
}

grpc::Status ObjectUpload::Attempt(const ObjectSource& source, UploadOutcome& out) {
  int64_t offset = 0;
  rdg::v1::UploadRequest first;
  if (source.size > chunk_bytes_) {
    // Large object: a persisted session the gateway keeps if the connection breaks.
    rdg::v1::UploadStatus st;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (session_id_.empty()) {
      grpc::Status s = stub_.OpenUpload(&ctx, OpenRequest(source), &st);
      if (!s.ok()) return s;
    } else {
      rdg::v1::GetUploadRequest get;
      get.set_session_id(session_id_);
      grpc::Status s = stub_.GetUpload(&ctx, get, &st);
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        SetSession("");  // expired or aborted: open afresh on the next attempt
        return grpc::Status(grpc::StatusCode::ABORTED, s.error_message());
      }
      if (!s.ok()) return s;
    }
    // The gateway also finds an open session of ours for the same content at OpenUpload.
    if (!out.resumed_from.has_value()) out.resumed_from = st.committed_offset();
    if (st.state() == rdg::v1::COMMITTED) {
      out.committed = st.committed();
      if (st.has_hl7_ack()) out.hl7_ack = st.hl7_ack();
      return grpc::Status::OK;
    }
    SetSession(st.session_id());
    if (st.in_use()) {  // the broken connection still holds it at the gateway: wait, send nothing
      return grpc::Status(grpc::StatusCode::ABORTED,
                          "the upload is still held by an earlier connection");
    }
    offset = st.committed_offset();
    first.set_session_id(session_id_);
  } else {
    *first.mutable_open() = OpenRequest(source);
  }
  return Stream(source, offset, std::move(first), out);
}

grpc::Status ObjectUpload::Stream(const ObjectSource& source, int64_t offset,
                                  rdg::v1::UploadRequest first, UploadOutcome& out) {
  std::optional<std::ifstream> file;
  if (!source.data.has_value()) {
    file.emplace(source.path, std::ios::binary);
    file->seekg(offset);
    if (!*file) return grpc::Status(grpc::StatusCode::DATA_LOSS, "cannot read the file");
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  rdg::v1::UploadStatus status;
  auto writer = stub_.Upload(&ctx, &status);
  rdg::v1::UploadRequest msg = std::move(first);
  bool sent_all = true;
  do {
    const int64_t n = std::min<int64_t>(chunk_bytes_, source.size - offset);
    // Read straight into the message (no second copy of every chunk).
    std::string& buf = *msg.mutable_data();
    if (source.data.has_value()) {
      buf.assign(*source.data, static_cast<size_t>(offset), static_cast<size_t>(n));
    } else {
      buf.resize(static_cast<size_t>(n));
      if (!file->read(buf.data(), n)) {
        return grpc::Status(grpc::StatusCode::DATA_LOSS, "file changed while uploading");
      }
    }
    limiter_.Take(n);
    if (cancelled != nullptr && cancelled->load()) {
      ctx.TryCancel();
      writer->Finish().ok();
      return grpc::Status(grpc::StatusCode::CANCELLED, "upload stopped (shutting down)");
    }
    msg.set_offset(offset);
    offset += n;
    msg.set_commit(offset == source.size);
    out.commit_sent = false;
    if (!writer->Write(msg)) {
      sent_all = false;  // the gateway ended the call early (error or already stored)
      break;
    }
    out.bytes_sent += n;
    out.commit_sent = msg.commit();
    if (on_bytes) on_bytes(n);
    msg.Clear();
  } while (offset < source.size);
  if (sent_all) writer->WritesDone();
  grpc::Status s = writer->Finish();
  out.answered_by_gateway =
      ctx.GetServerTrailingMetadata().count(rdg::v1::kAnsweredByGatewayKey) > 0;
  if (!s.ok()) return s;
  if (status.state() != rdg::v1::COMMITTED) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "upload interrupted before commit");
  }
  out.committed = status.committed();
  if (status.has_hl7_ack()) out.hl7_ack = status.hl7_ack();
  return grpc::Status::OK;
}

}  // namespace rdg::clients
