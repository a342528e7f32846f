#include "clients/agent/forwarder.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/common/connection.h"

namespace rdg::agent {

FailureKind ClassifyFailure(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:  // larger than the gateway's limits
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::DATA_LOSS:  // the outbox file itself is unreadable
      return FailureKind::kRefused;
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::NOT_FOUND:
      return FailureKind::kTransient;
    default:  // UNAVAILABLE, DEADLINE_EXCEEDED, UNAUTHENTICATED, PERMISSION_DENIED, …
      return FailureKind::kConnectivity;
  }
}

Forwarder::Forwarder(const rdg::v1::Forwarder& config, std::shared_ptr<grpc::Channel> channel,
                     Outbox& outbox)
    : config_(config),
      channel_(std::move(channel)),
      stub_(rdg::v1::IngestService::NewStub(channel_)),
      outbox_(outbox),
      limiter_(static_cast<double>(config.max_bytes_per_second())),
      rng_(std::random_device{}()) {}

Forwarder::~Forwarder() { Stop(absl::ZeroDuration()); }

void Forwarder::Start() {
  for (int i = 0; i < config_.parallel(); ++i) workers_.emplace_back([this] { Work(); });
}

void Forwarder::Wake() { wake_.notify_all(); }

void Forwarder::Stop(absl::Duration grace) {
  if (workers_.empty()) return;
  stopping_ = true;
  wake_.notify_all();
  {
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, absl::ToChronoMilliseconds(grace), [this] { return in_flight_ == 0; });
  }
  cancel_uploads_ = true;
  for (auto& w : workers_) w.join();
  workers_.clear();
}

absl::Duration Forwarder::Backoff(int failures) {
  // Exponential with full jitter: uniform in [0, min(max, initial · 2^(failures-1))].
  const double cap =
      std::min<double>(config_.max_backoff_ms(),
                       config_.initial_backoff_ms() * std::pow(2.0, std::min(failures - 1, 30)));
  std::uniform_real_distribution<double> jitter(0.0, cap);
  return absl::Milliseconds(jitter(rng_));
}

void Forwarder::Work() {
  while (!stopping_) {
    std::optional<OutboxItem> item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const absl::Time now = absl::Now();
      if (now < paused_until_) {
        wake_.wait_for(lock, absl::ToChronoMilliseconds(paused_until_ - now));
        continue;
      }
      if (suspect_in_flight_) {  // a suspect is being sent alone: wait for its outcome
        wake_.wait_for(lock, std::chrono::seconds(1));
        continue;
      }
      if (outbox_.HasDueSuspect(now)) {
        if (in_flight_ > 0) {  // let the uploads in flight end first
          wake_.wait_for(lock, std::chrono::seconds(1));
          continue;
        }
        item = outbox_.TakeSuspect(now);
        suspect_in_flight_ = item.has_value();
      }
      if (!item) item = outbox_.Take(now);
      if (!item) {
        // Nothing due: sleep until woken, the next backoff ends, or a second passes.
        absl::Duration wait = absl::Seconds(1);
        if (auto due = outbox_.NextDue())
          wait = std::clamp(*due - now, absl::Milliseconds(1), wait);
        wake_.wait_for(lock, absl::ToChronoMilliseconds(wait));
        continue;
      }
      ++in_flight_;
    }
    Forward(*item);
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    suspect_in_flight_ = false;
    wake_.notify_all();
  }
}

void Forwarder::Forward(const OutboxItem& item) {
  clients::ObjectSource source{item.kind, item.path,   std::nullopt,
                               item.size, item.sha256, config_.priority()};
  clients::ObjectUpload upload(*stub_, limiter_, config_.chunk_bytes(), item.session_id);
  upload.cancelled = &cancel_uploads_;
  upload.on_session = [this, id = item.id](const std::string& session) {
    outbox_.SetSession(id, session);
  };
  clients::UploadOutcome outcome;
  const grpc::Status status = upload.Attempt(source, outcome);
  const absl::Time now = absl::Now();
  if (status.ok()) {
    SentInfo info{outcome.committed.exam_id(), outcome.bytes_sent, outcome.resumed_from};
    if (auto s = outbox_.Sent(item.id, info, now); !s.ok()) {
      LOG(ERROR) << "forwarder: item " << item.id << " stored at the gateway but not marked: " << s;
    }
    std::lock_guard<std::mutex> lock(mu_);
    connectivity_failures_ = 0;
    return;
  }
  const std::string error =
      absl::StrCat(clients::StatusCodeName(status.error_code()), ": ", status.error_message());
  if (Quarantined(item, outcome, error, now)) return;
  switch (ClassifyFailure(status.error_code())) {
    case FailureKind::kRefused: {
      std::string reason = error;
      if (auto ack = clients::AckInErrorDetails(status)) {
        absl::StrAppend(&reason, "\nHL7 ACK ", ack->code(), ":\n", ack->message());
      }
      LOG(WARNING) << "forwarder: item " << item.id << " refused by the gateway ("
                   << clients::StatusCodeName(status.error_code()) << "); moved to dead-letter";
      if (auto s = outbox_.Dead(item.id, reason, now); !s.ok()) {
        LOG(ERROR) << "forwarder: cannot dead-letter item " << item.id << ": " << s;
        outbox_.Retry(item.id, error, now + absl::Minutes(1), now);
      }
      return;
    }
    case FailureKind::kTransient: {
      absl::Duration delay;
      {
        std::lock_guard<std::mutex> lock(mu_);
        delay = Backoff(item.attempts + 1);
      }
      outbox_.Retry(item.id, error, now + delay, now);
      return;
    }
    case FailureKind::kConnectivity: {
      std::lock_guard<std::mutex> lock(mu_);
      outbox_.Retry(item.id, error, now, now);
      if (stopping_) return;
      // One pause for everyone: the first failure of a burst sets it, later ones keep it.
      if (now >= paused_until_) {
        ++connectivity_failures_;
        paused_until_ = now + Backoff(connectivity_failures_);
        LOG(WARNING) << "forwarder: gateway not reachable (" << error << "); retrying in "
                     << absl::FormatDuration(paused_until_ - now) << ", " << outbox_.PendingCount()
                     << " items waiting";
      }
      return;
    }
  }
}

bool Forwarder::Quarantined(const OutboxItem& item, const clients::UploadOutcome& outcome,
                            const std::string& error, absl::Time now) {
  // The whole object went out with `commit`, and the call ended without the gateway's answer:
  // the gateway (or the link) went away while it processed the object. Our own shutdown is not
  // the object's fault.
  if (!outcome.commit_sent || outcome.answered_by_gateway || stopping_) return false;
  const int losses = outbox_.RecordProcessingFailure(item.id);
  LOG(WARNING) << "forwarder: item " << item.id << " lost the gateway while it was processed ("
               << losses << " of " << config_.quarantine_after() << "): " << error;
  if (losses < config_.quarantine_after()) return false;
  const std::string reason = absl::StrCat(
      "the gateway failed while processing this object: the connection was lost ", losses,
      " times after the object was sent in full, the last times with nothing else in flight "
      "(last: ",
      error,
      "). Quarantined so that the rest of the outbox can flow; once the "
      "gateway is fixed: rdg-clinic agent dead-letters --retry ",
      item.id);
  if (auto s = outbox_.Dead(item.id, reason, now); !s.ok()) {
    LOG(ERROR) << "forwarder: cannot quarantine item " << item.id << ": " << s;
    return false;
  }
  LOG(ERROR) << "forwarder: item " << item.id << " quarantined in dead-letter after " << losses
             << " losses of the gateway while it was processed";
  return true;
}

}  // namespace rdg::agent
