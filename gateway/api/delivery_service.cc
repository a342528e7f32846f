#include "gateway/api/delivery_service.h"

#include <deque>

#include "absl/strings/numbers.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "storage/status_macros.h"

namespace rdg::api {
namespace {

absl::StatusOr<int64_t> ParseCursor(const std::string& cursor) {
  int64_t seq = 0;
  if (!cursor.empty() && (!absl::SimpleAtoi(cursor, &seq) || seq < 0)) {
    return absl::InvalidArgumentError("cursor is not one this gateway issued");
  }
  return seq;
}

}  // namespace

//! One clinic's live report feed: sends everything after the cursor, then waits (without holding
//! a thread) until the report desk signals a new deliverable report for the institution.
class WatchReactor final : public grpc::ServerWriteReactor<rdg::v1::DeliveredReport> {
 public:
  WatchReactor(DeliveryServiceImpl& service, grpc::CallbackServerContext* ctx,
               rdg::v1::WatchReportsRequest request)
      : service_(service), ctx_(ctx), request_(std::move(request)) {
    Post(&WatchReactor::Start);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Stop(grpc::Status(grpc::StatusCode::CANCELLED, "watch ended"));
    absl::MutexLock lock(&mu_);
    writing_ = false;
    MaybeWriteLocked();
  }
  // Finish() may let gRPC delete this reactor at once (OnDone on another thread), so it is
  // always called after mu_ is released, and nothing touches a member afterwards.
  void OnCancel() override { Stop(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled")); }
  void OnDone() override {
    // After Unsubscribe returns no new wake-up can be posted; tasks already queued still hold
    // the reactor, and the last of them deletes it.
    int64_t token;
    {
      absl::MutexLock lock(&mu_);
      token = token_;
      done_ = true;
    }
    if (token != 0) service_.reports_.Unsubscribe(token);
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = pending_ == 0;
    }
    if (last) delete this;
  }

 private:
  void Start() {
    auto principal = Authenticate(ctx_, service_.directory_);
    auto cursor = ParseCursor(request_.cursor());
    if (!principal.ok() || !cursor.ok()) {
      return Stop(ToGrpcStatus(!principal.ok() ? principal.status() : cursor.status()));
    }
    principal_ = *principal;
    {
      absl::MutexLock lock(&mu_);
      cursor_ = *cursor;
    }
    // Subscribe before the first read so that nothing submitted in between is missed. (Never
    // with mu_ held: the desk calls the wake-up under its own lock, and the wake-up takes mu_.)
    const int64_t token = service_.reports_.Subscribe(principal_.institution,
                                                      [this] { Post(&WatchReactor::Fetch); });
    bool ended;
    {
      absl::MutexLock lock(&mu_);
      ended = done_;
      if (!ended) token_ = token;
    }
    if (ended) {  // the call ended while we subscribed: OnDone could not see the token
      service_.reports_.Unsubscribe(token);
      return;
    }
    Fetch();
  }

  //! Runs a member on the pool; the reactor outlives every task it posted.
  void Post(void (WatchReactor::*task)()) {
    {
      absl::MutexLock lock(&mu_);
      ++pending_;
    }
    service_.pool_.Post([this, task] {
      (this->*task)();
      bool last;
      {
        absl::MutexLock lock(&mu_);
        last = --pending_ == 0 && done_;
      }
      if (last) delete this;
    });
  }

  //! Reads the feed after the cursor into the outbox (on the pool).
  void Fetch() {
    int64_t after;
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
      after = fetched_through_ > cursor_ ? fetched_through_ : cursor_;
    }
    auto reports = service_.reports_.Feed(principal_, after, 100);
    if (!reports.ok()) return Stop(ToGrpcStatus(reports.status()));
    {
      absl::MutexLock lock(&mu_);
      for (const auto& r : *reports) {
        if (r.seq <= fetched_through_) continue;
        outbox_.push_back(ToDelivered(r));
        fetched_through_ = r.seq;
      }
      MaybeWriteLocked();
    }
    if (reports->size() == 100) Post(&WatchReactor::Fetch);  // more to catch up
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || stopped_ || outbox_.empty()) return;
    current_ = std::move(outbox_.front());
    outbox_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void Stop(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    Finish(std::move(status));
  }

  DeliveryServiceImpl& service_;
  grpc::CallbackServerContext* ctx_;
  const rdg::v1::WatchReportsRequest request_;
  auth::Principal principal_;
  absl::Mutex mu_;
  int64_t token_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fetched_through_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<rdg::v1::DeliveredReport> outbox_ ABSL_GUARDED_BY(mu_);
  rdg::v1::DeliveredReport current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  //!< pool tasks not yet finished
  bool done_ ABSL_GUARDED_BY(mu_) = false;  //!< OnDone ran
};

grpc::ServerWriteReactor<rdg::v1::DeliveredReport>* DeliveryServiceImpl::WatchReports(
    grpc::CallbackServerContext* ctx, const rdg::v1::WatchReportsRequest* request) {
  return new WatchReactor(*this, ctx, *request);
}

grpc::ServerUnaryReactor* DeliveryServiceImpl::PollReports(
    grpc::CallbackServerContext* ctx, const rdg::v1::WatchReportsRequest* request,
    rdg::v1::PollReportsResponse* response) {
  return RunUnary(ctx, pool_, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto clinic, Authenticate(ctx, directory_));
    RDG_ASSIGN_OR_RETURN(int64_t after, ParseCursor(request->cursor()));
    const int32_t limit = request->max_reports() > 0 ? request->max_reports() : 100;
    RDG_ASSIGN_OR_RETURN(auto reports, reports_.Feed(clinic, after, limit));
    for (const auto& r : reports) *response->add_reports() = ToDelivered(r);
    response->set_next_cursor(reports.empty() ? request->cursor() : std::to_string(reports.back().seq));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DeliveryServiceImpl::AcknowledgeReport(
    grpc::CallbackServerContext* ctx, const rdg::v1::AcknowledgeRequest* request,
    rdg::v1::AcknowledgeResponse* response) {
  return RunUnary(ctx, pool_, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto clinic, Authenticate(ctx, directory_));
    RDG_ASSIGN_OR_RETURN(auto report, reports_.Acknowledge(clinic, request->report_id()));
    *response->mutable_acknowledged_at() = ToTimestamp(*report.acknowledged_at);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DeliveryServiceImpl::GetReport(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::GetReportRequest* request,
                                                         rdg::v1::DeliveredReport* response) {
  return RunUnary(ctx, pool_, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto clinic, Authenticate(ctx, directory_));
    RDG_ASSIGN_OR_RETURN(auto report, reports_.Latest(clinic, request->exam_id()));
    *response = ToDelivered(report);
    return absl::OkStatus();
  });
}

}  // namespace rdg::api
