#include "clients/agent/gateway_limits.h"

#include <glog/logging.h>

#include <chrono>
#include <string>
#include <utility>

namespace rdg::agent {
namespace {

constexpr char kStateKey[] = "gateway_limits";  // serialized rdg.v1.IngestLimits
constexpr absl::Duration kRetry = absl::Seconds(30);

}  // namespace

GatewayLimits::GatewayLimits(std::shared_ptr<grpc::Channel> channel, Outbox& outbox,
                             ObjectCheck& check, absl::Duration refresh)
    : stub_(rdg::v1::IngestService::NewStub(std::move(channel))),
      outbox_(outbox),
      check_(check),
      refresh_(refresh) {}

GatewayLimits::~GatewayLimits() { Stop(); }

void GatewayLimits::ApplyKept() {
  const std::string kept = outbox_.GetState(kStateKey);
  rdg::v1::IngestLimits limits;
  if (kept.empty() || !limits.ParseFromString(kept)) return;
  Apply(limits, "kept from the gateway's last answer");
}

void GatewayLimits::Apply(const rdg::v1::IngestLimits& limits, const char* source) {
  auto changed = check_.Adopt(limits);
  if (!changed.ok()) {
    LOG(ERROR) << "agent: the gateway's limits (" << source
               << ") not applied: " << changed.status();
  } else if (!changed->empty()) {
    LOG(INFO) << "agent: checking with the gateway's limits (" << source << "): " << *changed;
  }
}

bool GatewayLimits::RefreshOnce() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  rdg::v1::IngestLimits limits;
  const grpc::Status s = stub_->GetIngestLimits(&ctx, rdg::v1::GetIngestLimitsRequest(), &limits);
  if (!s.ok()) {
    VLOG(1) << "agent: the gateway's limits not read: " << s.error_message();
    return false;
  }
  Apply(limits, "from the gateway");
  if (auto kept = outbox_.SetState(kStateKey, limits.SerializeAsString()); !kept.ok()) {
    LOG(WARNING) << "agent: the gateway's limits not kept for the next start: " << kept;
  }
  return true;
}

void GatewayLimits::Start() {
  thread_ = std::thread([this] { Run(); });
}

void GatewayLimits::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GatewayLimits::Run() {
  for (;;) {
    const absl::Duration next = RefreshOnce() ? refresh_ : kRetry;
    std::unique_lock<std::mutex> lock(mu_);
    if (wake_.wait_for(lock, absl::ToChronoMilliseconds(next), [this] { return stopping_; })) {
      return;
    }
  }
}

}  // namespace rdg::agent
