#include "clients/clinic/uploader.h"

#include "clients/common/connection.h"
#include "clients/common/object_upload.h"
#include "storage/base/digest.h"
#include "storage/base/posix_file.h"
#include "storage/formats/file_kind.h"
#include "storage/formats/hl7_lab.h"

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

//! What the files of one run share: whether the gateway is out of reach, and why it refused
//! the handshake (asked once).
struct RunState {
  std::atomic<bool> gateway_down{false};  //!< one file's exhausted retries stop the rest
  std::once_flag explained;
  std::optional<std::string> refusal;  //!< written once under `explained`, read after `refused`
  std::atomic<bool> refused{false};    //!< set after `refusal` holds the gateway's refusal
};

//! A failed call that may be the gateway closing the TLS handshake on this client's certificate.
bool LooksLikeClosedHandshake(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE || GatewayIsBusy(status)) return false;
  const std::string& m = status.error_message();
  return m.find("Socket closed") != std::string::npos ||
         m.find("andshake") != std::string::npos;  // "Handshake failed", "handshake"
}

class FileUploader {
 public:
  FileUploader(grpc::Channel& channel, IngestService::Stub& stub, const UploadOptions& options,
               RateLimiter& limiter, Progress* progress, RunState& run)
      : channel_(channel),
        options_(options),
        run_(run),
        upload_(stub, limiter, options.chunk_bytes) {
    if (progress != nullptr) upload_.on_bytes = [progress](int64_t n) { progress->AddBytes(n); };
  }

  FileResult Run(const UploadItem& item) {
    FileResult r;
    r.path = item.path;
    r.label = item.label;
    r.kind = item.kind;
    if (!item.refusal.empty()) {  // refused here: nothing is sent
      r.code = grpc::StatusCode::INVALID_ARGUMENT;
      r.message = item.refusal;
      return r;
    }
    ObjectSource source{item.kind, item.path, item.data, 0, "", options_.priority};
    std::error_code ec;
    std::optional<std::string> digest;
    if (item.data.has_value()) {
      source.size = static_cast<int64_t>(item.data->size());
      digest = storage::ToRaw(storage::Sha256::Of(*item.data));
    } else {
      source.size = static_cast<int64_t>(fs::file_size(item.path, ec));
      if (!ec && source.size <= options_.chunk_bytes) {
        // Sent in one message: read once, hashed and sent from memory.
        if (auto bytes = storage::ReadWholeFile(item.path, "the file"); bytes.ok()) {
          source.size = static_cast<int64_t>(bytes->size());
          digest = storage::ToRaw(storage::Sha256::Of(*bytes));
          source.data = *std::move(bytes);
        }
      } else if (auto d = storage::Sha256::OfFile(item.path); d.ok()) {
        digest = storage::ToRaw(*d);
      }
    }
    r.size = source.size;
    if (ec || !digest) {
      r.code = grpc::StatusCode::NOT_FOUND;
      r.message = "cannot read the file";
      return r;
    }
    source.sha256 = *std::move(digest);
    // Seeded once per thread: std::random_device opens the kernel's source each time.
    thread_local std::mt19937 rng{std::random_device{}()};
    auto backoff = std::chrono::milliseconds(100);
    UploadOutcome outcome;
    for (r.attempts = 1; r.attempts <= options_.max_attempts; ++r.attempts) {
      if (run_.gateway_down) {  // another file already exhausted its retries: do not wait again
        const bool refused = run_.refused;
        r.code = refused ? grpc::StatusCode::UNAUTHENTICATED : grpc::StatusCode::UNAVAILABLE;
        r.message = refused ? *run_.refusal : "not attempted: the gateway is unreachable";
        r.attempts = 0;
        return r;
      }
      grpc::Status status = upload_.Attempt(source, outcome);
      Collect(outcome, r);
      if (!status.ok()) {
        if (auto ack = AckInErrorDetails(status)) r.hl7_ack = *std::move(ack);
      }
      if (status.ok()) {
        r.ok = true;
        r.code = grpc::StatusCode::OK;
        r.message.clear();
        return r;
      }
      r.code = status.error_code();
      r.message = status.error_message();
      r.busy = GatewayIsBusy(status);
      if (LooksLikeClosedHandshake(status) && Refused()) {
        r.code = grpc::StatusCode::UNAUTHENTICATED;
        r.message = *run_.refusal;
        run_.gateway_down = true;
        return r;
      }
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
    // A busy gateway (a limit, a full disk) answered: other files may still get through.
    if ((r.code == grpc::StatusCode::UNAVAILABLE && !r.busy) ||
        r.code == grpc::StatusCode::DEADLINE_EXCEEDED) {
      run_.gateway_down = true;
    }
    return r;
  }

 private:
  //! Whether the gateway refused this client's handshake; asks `explain_refusal` once per run.
  bool Refused() {
    if (!options_.explain_refusal) return false;
    std::call_once(run_.explained, [this] {
      run_.refusal = options_.explain_refusal();
      run_.refused = run_.refusal.has_value();
    });
    return run_.refusal.has_value();
  }

  static void Collect(const UploadOutcome& o, FileResult& r) {
    r.committed = o.committed;
    if (o.hl7_ack.has_value()) r.hl7_ack = o.hl7_ack;
    r.resumed_from = o.resumed_from.value_or(0);
    r.bytes_sent = o.bytes_sent;
  }

  grpc::Channel& channel_;
  const UploadOptions& options_;
  RunState& run_;
  ObjectUpload upload_;
};

}  // namespace

Discovery DiscoverFiles(const std::vector<std::string>& paths) {
  Discovery d;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      d.files.push_back(p);
    } else if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(
               p, fs::directory_options::skip_permission_denied, ec);
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

std::vector<UploadItem> ItemsFromFiles(const std::vector<std::string>& files) {
  std::vector<UploadItem> items;
  for (const auto& path : files) {
    std::string head(512, '\0');
    std::ifstream in(path, std::ios::binary);
    head.resize(in.read(head.data(), 512) ? 512 : static_cast<size_t>(in.gcount()));
    const bool readable = static_cast<bool>(in) || in.eof();
    if (readable && head.empty()) {
      items.push_back({path, path, rdg::v1::DICOM, std::nullopt, "the file is empty"});
      continue;
    }
    if (!IsHl7File(path, head)) {
      // Obvious non-DICOM files are refused here: sending a 50 MB video to be told it is not
      // DICOM costs a van its mobile data.
      const std::string kind = formats::NonDicomKind(head);
      items.push_back({path, path, rdg::v1::DICOM, std::nullopt,
                       kind.empty() ? "" : formats::NotDicomMessage(kind)});
      continue;
    }
    auto contents = storage::ReadWholeFile(path, "file");
    // An unreadable file still becomes one item, so that its failure is reported like any other.
    std::vector<std::string> messages =
        contents.ok() ? formats::SplitHl7Messages(*contents) : std::vector<std::string>{""};
    if (messages.empty()) {
      items.push_back({path, path, rdg::v1::HL7V2_LAB, std::nullopt,
                       "no HL7 message in the file (no MSH segment found)"});
    }
    for (size_t i = 0; i < messages.size(); ++i) {
      std::string label = messages.size() == 1 ? path : path + "#" + std::to_string(i + 1);
      items.push_back({path, std::move(label), rdg::v1::HL7V2_LAB, std::move(messages[i]), ""});
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
  RunState run;
  auto worker = [&] {
    for (size_t i = next++; i < files.size(); i = next++) {
      FileUploader uploader(*channel, *stub, options, limiter, progress, run);
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
