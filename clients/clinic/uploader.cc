#include "clients/clinic/uploader.h"

#include "clients/common/file_digest.h"
#include "gateway/formats/hl7_lab.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

namespace rdg::clients {
namespace {

namespace fs = std::filesystem;
using rdg::v1::IngestService;

bool HasDicomMarker(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.seekg(128);
  return in.read(magic, 4) && std::string(magic, 4) == "DICM";
}

std::string LowerExtension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext;
}

bool LooksLikeExamFile(const fs::path& path) {
  std::string name = path.filename().string();
  if (name.rfind("DICOMDIR", 0) == 0) return false;
  const std::string ext = LowerExtension(path);
  return ext == ".dcm" || ext == ".dicom" || ext == ".hl7" || HasDicomMarker(path);
}

//! An HL7 v2 file: named .hl7, or starting with an MLLP frame (0x0B) or an MSH segment.
bool IsHl7File(const fs::path& path, const std::string& head) {
  return LowerExtension(path) == ".hl7" || (!head.empty() && head[0] == '\x0b') ||
         head.rfind("MSH", 0) == 0;
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

//! The HL7 ACK of a rejected lab message, from the gRPC rich error details (an RpcStatus,
//! wire-compatible with google.rpc.Status, holding an Any with an Hl7Acknowledgement).
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

//! Shared token bucket: caps the payload rate of all upload threads together.
class RateLimiter {
 public:
  explicit RateLimiter(double bytes_per_second) : rate_(bytes_per_second) {}
  void Take(int64_t bytes) {
    if (rate_ <= 0) return;
    std::chrono::steady_clock::time_point until;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto now = std::chrono::steady_clock::now();
      next_ = std::max(next_, now);
      until = next_;
      next_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(double(bytes) / rate_));
    }
    std::this_thread::sleep_until(until);  // pacing the sender is this object's purpose
  }

 private:
  const double rate_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point next_{};
};

class FileUploader {
 public:
  FileUploader(grpc::Channel& channel, IngestService::Stub& stub, const UploadOptions& options,
               RateLimiter& limiter, Progress* progress, std::atomic<bool>& gateway_down)
      : channel_(channel),
        stub_(stub),
        options_(options),
        limiter_(limiter),
        progress_(progress),
        gateway_down_(gateway_down) {}

  FileResult Run(const UploadItem& item) {
    item_ = &item;
    FileResult r;
    r.path = item.path;
    r.label = item.label;
    r.kind = item.kind;
    std::error_code ec;
    std::optional<std::string> digest;
    if (item.data.has_value()) {
      r.size = static_cast<int64_t>(item.data->size());
      digest = Sha256OfBytes(*item.data);
    } else {
      r.size = static_cast<int64_t>(fs::file_size(item.path, ec));
      digest = Sha256OfFile(item.path);
    }
    if (ec || !digest) {
      r.code = grpc::StatusCode::NOT_FOUND;
      r.message = "cannot read the file";
      return r;
    }
    digest_ = *std::move(digest);
    std::mt19937 rng{std::random_device{}()};
    auto backoff = std::chrono::milliseconds(100);
    for (r.attempts = 1; r.attempts <= options_.max_attempts; ++r.attempts) {
      if (gateway_down_) {  // another file already exhausted its retries: do not wait again
        r.code = grpc::StatusCode::UNAVAILABLE;
        r.message = "not attempted: the gateway is unreachable";
        r.attempts = 0;
        return r;
      }
      grpc::Status status = Attempt(r);
      if (!status.ok()) r.hl7_ack = AckInErrorDetails(status);
      if (status.ok()) {
        r.ok = true;
        r.code = grpc::StatusCode::OK;
        r.message.clear();
        return r;
      }
      r.code = status.error_code();
      r.message = status.error_message();
      if (!Retryable(r.code) || r.attempts == options_.max_attempts) break;
      // Exponential backoff with full jitter, capped at 5 s.
      std::uniform_int_distribution<int64_t> jitter(0, backoff.count());
      std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      // After a broken connection gRPC keeps the channel in backoff for up to ~15 s and fails
      // calls at once; ask it to reconnect now and give it a bounded time to do so.
      channel_.WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
    }
    r.attempts = std::min(r.attempts, options_.max_attempts);
    if (r.code == grpc::StatusCode::UNAVAILABLE || r.code == grpc::StatusCode::DEADLINE_EXCEEDED) {
      gateway_down_ = true;
    }
    return r;
  }

 private:
  rdg::v1::OpenUploadRequest OpenRequest(int64_t size) const {
    rdg::v1::OpenUploadRequest open;
    open.set_kind(item_->kind);
    open.set_size(size);
    open.set_sha256(digest_);
    open.set_priority(options_.priority);
    return open;
  }

  grpc::Status Attempt(FileResult& r) {
    int64_t offset = 0;
    rdg::v1::UploadRequest first;
    if (r.size > options_.chunk_bytes) {
      // Large object: a persisted session the gateway keeps if the connection breaks.
      rdg::v1::UploadStatus st;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      if (session_id_.empty()) {
        grpc::Status s = stub_.OpenUpload(&ctx, OpenRequest(r.size), &st);
        if (!s.ok()) return s;
      } else {
        rdg::v1::GetUploadRequest get;
        get.set_session_id(session_id_);
        grpc::Status s = stub_.GetUpload(&ctx, get, &st);
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
          session_id_.clear();  // expired or aborted: open afresh on the next attempt
          return grpc::Status(grpc::StatusCode::ABORTED, s.error_message());
        }
        if (!s.ok()) return s;
      }
      if (st.state() == rdg::v1::COMMITTED) {
        r.committed = st.committed();
        if (st.has_hl7_ack()) r.hl7_ack = st.hl7_ack();
        return grpc::Status::OK;
      }
      session_id_ = st.session_id();
      offset = st.committed_offset();
      if (r.attempts == 1) r.resumed_from = offset;
      first.set_session_id(session_id_);
    } else {
      *first.mutable_open() = OpenRequest(r.size);
    }
    return Stream(r, offset, std::move(first));
  }

  grpc::Status Stream(FileResult& r, int64_t offset, rdg::v1::UploadRequest first) {
    std::optional<std::ifstream> file;
    if (!item_->data.has_value()) {
      file.emplace(r.path, std::ios::binary);
      file->seekg(offset);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    rdg::v1::UploadStatus status;
    auto writer = stub_.Upload(&ctx, &status);
    rdg::v1::UploadRequest msg = std::move(first);
    std::string buf;
    bool sent_all = true;
    do {
      const int64_t n = std::min<int64_t>(options_.chunk_bytes, r.size - offset);
      buf.resize(static_cast<size_t>(n));
      if (item_->data.has_value()) {
        buf.assign(*item_->data, static_cast<size_t>(offset), static_cast<size_t>(n));
      } else if (!file->read(buf.data(), n)) {
        return grpc::Status(grpc::StatusCode::DATA_LOSS, "file changed while uploading");
      }
      limiter_.Take(n);
      msg.set_offset(offset);
      msg.set_data(buf);
      offset += n;
      msg.set_commit(offset == r.size);
      if (!writer->Write(msg)) {
        sent_all = false;  // the gateway ended the call early (error or already stored)
        break;
      }
      r.bytes_sent += n;
      if (progress_) progress_->AddBytes(n);
      msg.Clear();
    } while (offset < r.size);
    if (sent_all) writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok()) return s;
    if (status.state() != rdg::v1::COMMITTED) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "upload interrupted before commit");
    }
    r.committed = status.committed();
    if (status.has_hl7_ack()) r.hl7_ack = status.hl7_ack();
    return grpc::Status::OK;
  }

  grpc::Channel& channel_;
  IngestService::Stub& stub_;
  const UploadOptions& options_;
  RateLimiter& limiter_;
  Progress* progress_;
  std::atomic<bool>& gateway_down_;  //!< shared: one file's exhausted retries stop the rest
  const UploadItem* item_ = nullptr;  //!< what Run() is uploading
  std::string digest_;
  std::string session_id_;
};

}  // namespace

Discovery DiscoverFiles(const std::vector<std::string>& paths) {
  Discovery d;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      d.files.push_back(p);
    } else if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (!it->is_regular_file(ec)) continue;
        (LooksLikeExamFile(it->path()) ? d.files : d.skipped).push_back(it->path().string());
      }
    } else {
      d.missing.push_back(p);
    }
  }
  std::sort(d.files.begin(), d.files.end());
  d.files.erase(std::unique(d.files.begin(), d.files.end()), d.files.end());
  std::sort(d.skipped.begin(), d.skipped.end());
  return d;
}

std::vector<UploadItem> ItemsFromFiles(const std::vector<std::string>& files,
                                       std::vector<std::string>* empty) {
  std::vector<UploadItem> items;
  for (const auto& path : files) {
    std::string head(3, '\0');
    std::ifstream in(path, std::ios::binary);
    head.resize(in.read(head.data(), 3) ? 3 : static_cast<size_t>(in.gcount()));
    if (!IsHl7File(path, head)) {
      items.push_back({path, path, rdg::v1::DICOM, std::nullopt});
      continue;
    }
    auto contents = ReadWholeFile(path);
    // An unreadable file still becomes one item, so that its failure is reported like any other.
    std::vector<std::string> messages =
        contents ? formats::SplitHl7Messages(*contents) : std::vector<std::string>{""};
    if (messages.empty() && empty != nullptr) empty->push_back(path);
    for (size_t i = 0; i < messages.size(); ++i) {
      std::string label = messages.size() == 1 ? path : path + "#" + std::to_string(i + 1);
      items.push_back({path, std::move(label), rdg::v1::HL7V2_LAB, std::move(messages[i])});
    }
  }
  return items;
}

std::vector<FileResult> UploadFiles(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::vector<UploadItem>& items,
                                    const UploadOptions& options, Progress* progress) {
  const auto& files = items;
  std::vector<FileResult> results(files.size());
  auto stub = IngestService::NewStub(channel);
  RateLimiter limiter(options.max_bytes_per_second);
  std::atomic<size_t> next{0};
  std::atomic<bool> gateway_down{false};
  auto worker = [&] {
    for (size_t i = next++; i < files.size(); i = next++) {
      FileUploader uploader(*channel, *stub, options, limiter, progress, gateway_down);
      results[i] = uploader.Run(files[i]);
      if (progress) progress->Add(1, 0);
    }
  };
  std::vector<std::thread> threads;
  const int n = std::clamp<int>(options.parallel, 1, 64);
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace rdg::clients
