#include "gateway/api/delivery_service.h"

#include <glog/logging.h>

#include <deque>

#include "absl/strings/numbers.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "gateway/common/live_streams.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/digest.h"
#include "storage/base/status_macros.h"

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
//!
//! Lifetime: the reactor is reference-counted. gRPC holds one reference from construction until
//! OnDone (released after the desk subscription is gone); every task posted to the pool holds one
//! until it has run. The last release deletes the reactor, so neither a task that outlives the
//! call nor OnDone racing a finishing task can free it twice or use it after it is freed. The
//! call's context is read only here, on gRPC's thread, before anything is queued.
class WatchReactor final : public grpc::ServerWriteReactor<rdg::v1::DeliveredReport> {
 public:
  WatchReactor(DeliveryServiceImpl& service, grpc::CallbackServerContext* ctx,
               const rdg::v1::WatchReportsRequest& request)
      : service_(service) {
    auto principal = service_.authenticator_.Authenticate(*ctx);
    if (auto limits = CheckRequestLimits(request); !limits.ok()) principal = limits;
    auto cursor = ParseCursor(request.cursor());
    if (!principal.ok() || !cursor.ok()) {
      Stop(ToGrpcStatus(!principal.ok() ? principal.status() : cursor.status()));
      return;
    }
    principal_ = *std::move(principal);
    {
      absl::MutexLock lock(&mu_);
      cursor_ = *cursor;
    }
    if (!service_.Register(this)) {
      EndForShutdown();
      return;
    }
    registered_ = true;
    Post(&WatchReactor::Start);
  }

  //! Asks the watch to end because the gateway is shutting down (on the pool, holding a
  //! reference: called under the service's registry lock, which OnDone also takes).
  void PostEnd() { Post(&WatchReactor::EndForShutdown); }

  void OnWriteDone(bool ok) override {
    if (!ok) return Stop(grpc::Status(grpc::StatusCode::CANCELLED, "watch ended"));
    absl::MutexLock lock(&mu_);
    writing_ = false;
    MaybeWriteLocked();
  }
  // Finish() may let gRPC run OnDone at once on another thread, so it is always called after
  // mu_ is released; the caller's reference keeps the reactor alive until it returns.
  void OnCancel() override { Stop(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled")); }
  void OnDone() override {
    int64_t token;
    {
      absl::MutexLock lock(&mu_);
      token = token_;
      token_ = 0;
      done_ = true;
    }
    // After Unsubscribe returns no new wake-up can arrive; tasks already queued hold references.
    if (token != 0) service_.reports_.Unsubscribe(token);
    if (registered_) service_.Unregister(this);
    Unref();
  }

 private:
  void EndForShutdown() {
    Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the gateway is shutting down: watch again from your cursor"));
  }

  void Start() {
    // Subscribe before the first read so that nothing submitted in between is missed. (Never
    // with mu_ held: the desk calls the wake-up under its own lock, and the wake-up takes mu_.)
    const int64_t token =
        service_.reports_.Subscribe(principal_.institution, [this] { Post(&WatchReactor::Fetch); });
    bool ended;
    {
      absl::MutexLock lock(&mu_);
      ended = done_ || stopped_;
      if (!ended) token_ = token;
    }
    if (ended) {  // the call ended while we subscribed: OnDone could not see the token
      service_.reports_.Unsubscribe(token);
      return;
    }
    Fetch();
  }

  //! Runs a member on the pool with a reference held; nothing is queued for a call that ended.
  void Post(void (WatchReactor::*task)()) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || stopped_) return;
      ++refs_;
    }
    service_.pool_.Post([this, task] {
      (this->*task)();
      Unref();
    });
  }

  void Unref() {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
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
    auto exams = service_.reports_.ExamsOf(principal_, *reports);
    if (!exams.ok()) return Stop(ToGrpcStatus(exams.status()));
    {
      absl::MutexLock lock(&mu_);
      for (const auto& r : *reports) {
        if (r.seq <= fetched_through_) continue;
        outbox_.push_back(service_.Delivered(r, *exams));
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
  const LiveStream live_{LiveStreams().watches};
  auth::Principal principal_;  //!< set in the constructor, read-only afterwards
  bool registered_ = false;    //!< in the service's registry; set in the constructor
  absl::Mutex mu_;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  //!< gRPC's (until OnDone) plus one per queued task
  int64_t token_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fetched_through_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<rdg::v1::DeliveredReport> outbox_ ABSL_GUARDED_BY(mu_);
  rdg::v1::DeliveredReport current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  //!< OnDone ran
};

bool DeliveryServiceImpl::Register(WatchReactor* watch) {
  absl::MutexLock lock(&watches_mu_);
  if (ending_) return false;
  watches_.insert(watch);
  return true;
}

void DeliveryServiceImpl::Unregister(WatchReactor* watch) {
  absl::MutexLock lock(&watches_mu_);
  watches_.erase(watch);
}

void DeliveryServiceImpl::EndWatches() {
  absl::MutexLock lock(&watches_mu_);
  ending_ = true;
  // Each watch in the set is alive: it leaves the set in OnDone, before gRPC's reference goes.
  for (WatchReactor* watch : watches_) watch->PostEnd();
}

grpc::ServerWriteReactor<rdg::v1::DeliveredReport>* DeliveryServiceImpl::WatchReports(
    grpc::CallbackServerContext* ctx, const rdg::v1::WatchReportsRequest* request) {
  return new WatchReactor(*this, ctx, *request);
}

grpc::ServerUnaryReactor* DeliveryServiceImpl::PollReports(
    grpc::CallbackServerContext* ctx, const rdg::v1::WatchReportsRequest* request,
    rdg::v1::PollReportsResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto clinic, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(int64_t after, ParseCursor(request->cursor()));
    const int32_t limit = request->max_reports() > 0 ? request->max_reports() : 100;
    RDG_ASSIGN_OR_RETURN(auto reports, reports_.Feed(clinic, after, limit));
    RDG_ASSIGN_OR_RETURN(auto exams, reports_.ExamsOf(clinic, reports));
    for (const auto& r : reports) *response->add_reports() = Delivered(r, exams);
    response->set_next_cursor(reports.empty() ? request->cursor()
                                              : std::to_string(reports.back().seq));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DeliveryServiceImpl::AcknowledgeReport(
    grpc::CallbackServerContext* ctx, const rdg::v1::AcknowledgeRequest* request,
    rdg::v1::AcknowledgeResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto clinic, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto report, reports_.Acknowledge(clinic, request->report_id()));
    *response->mutable_acknowledged_at() = ToTimestamp(*report.acknowledged_at);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DeliveryServiceImpl::GetReport(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::GetReportRequest* request,
                                                         rdg::v1::DeliveredReport* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto clinic, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto report, reports_.Latest(clinic, request->exam_id()));
    RDG_ASSIGN_OR_RETURN(auto exams, reports_.ExamsOf(clinic, {report}));
    *response = Delivered(report, exams);
    return absl::OkStatus();
  });
}

rdg::v1::DeliveredReport DeliveryServiceImpl::Delivered(
    const storage::ReportRecord& report,
    const absl::flat_hash_map<std::string, storage::ExamRecord>& exams) const {
  const auto exam = exams.find(report.exam_id);
  rdg::v1::DeliveredReport d = ToDelivered(report, exam != exams.end() ? &exam->second : nullptr,
                                           directory_, platform_name_);
  // The receipt: what this gateway vouches for, signed with its key (README "Gateway receipts").
  rdg::v1::ReportReceipt receipt;
  receipt.report_id = report.report_id;
  receipt.version = report.version;
  receipt.exam_id = report.exam_id;
  receipt.origin_institution = report.origin_institution;
  receipt.reader_user = report.reader_user;
  receipt.reader_institution = report.reader_institution;
  receipt.desk = d.report().content().desk();
  receipt.accepted_at_unix = absl::ToUnixSeconds(report.accepted_at);
  receipt.issued_at_unix = absl::ToUnixSeconds(clock_.Now());
  storage::Sha256 sha;
  sha.Update(report.canonical);
  receipt.report_sha256 = storage::ToHex(sha.Finish());
  d.set_receipt(rdg::v1::ReportReceiptBytes(receipt));
  absl::StatusOr<std::string> signature = receipts_.Sign(d.receipt());
  if (signature.ok()) {
    d.set_receipt_signature(*std::move(signature));
  } else {  // the clinic's verifiers then refuse the report as unproven; never a false receipt
    LOG(ERROR) << "cannot sign the receipt of report " << report.report_id << ": "
               << signature.status();
    d.clear_receipt();
  }
  return d;
}

}  // namespace rdg::api
