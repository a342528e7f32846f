#include "gateway/api/reading_service.h"

#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "gateway/api/object_stream.h"
#include "storage/base/status_macros.h"
#include "storage/vocabulary_proto.h"

namespace rdg::api {
namespace {

rdg::v1::Claim ToProto(const storage::ClaimRecord& c) {
  rdg::v1::Claim out;
  out.set_exam_id(c.exam_id);
  out.set_holder_user(c.holder_user);
  out.set_holder_institution(c.holder_institution);
  *out.mutable_claimed_at() = ToTimestamp(c.claimed_at);
  *out.mutable_expires_at() = ToTimestamp(c.expires_at);
  return out;
}

}  // namespace

grpc::ServerUnaryReactor* ReadingServiceImpl::GetWorklist(grpc::CallbackServerContext* ctx,
                                                          const rdg::v1::WorklistRequest* request,
                                                          rdg::v1::WorklistResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    storage::WorklistQuery query;
    query.exam_types.assign(request->modalities().begin(), request->modalities().end());
    for (int p : request->priorities())
      query.priorities.push_back(storage::FromNumber<storage::Priority>(p));
    for (int s : request->states())
      query.states.push_back(storage::FromNumber<storage::ExamState>(s));
    query.limit = request->page_size() > 0 ? request->page_size() : 100;
    query.after = request->page_token();
    query.patient = request->patient();
    RDG_ASSIGN_OR_RETURN(auto page, desk_.Worklist(reader, query));
    for (const auto& entry : page.entries) {
      auto* item = response->add_items();
      *item->mutable_exam() = api::ToProto(entry.exam, directory_);
      if (entry.exam.sla_due_at != absl::InfiniteFuture()) {
        *item->mutable_sla_due_at() = ToTimestamp(entry.exam.sla_due_at);
      }
      if (entry.claim) *item->mutable_claim() = ToProto(*entry.claim);
    }
    response->set_next_page_token(page.next_cursor);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::ClaimExam(grpc::CallbackServerContext* ctx,
                                                        const rdg::v1::ClaimRequest* request,
                                                        rdg::v1::Claim* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto claim, desk_.Claim(reader, request->exam_id(),
                                                 request->for_amendment(), request->reason()));
    *response = ToProto(claim);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::RenewClaim(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::ClaimRequest* request,
                                                         rdg::v1::Claim* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto claim, desk_.Renew(reader, request->exam_id()));
    *response = ToProto(claim);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::ReleaseClaim(grpc::CallbackServerContext* ctx,
                                                           const rdg::v1::ClaimRequest* request,
                                                           rdg::v1::Claim* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_RETURN_IF_ERROR(desk_.Release(reader, request->exam_id()));
    response->set_exam_id(request->exam_id());
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* ReadingServiceImpl::FetchExam(
    grpc::CallbackServerContext* ctx, const rdg::v1::FetchExamRequest* request) {
  // The context is read here, on gRPC's thread; the loader runs on the pool.
  absl::StatusOr<auth::Principal> reader = authenticator_.Authenticate(*ctx);
  if (auto limits = CheckRequestLimits(*request); !limits.ok()) reader = limits;
  return new ObjectStreamReactor(
      pool_, blobs_,
      [this, reader,
       exam_id = request->exam_id()]() -> absl::StatusOr<std::vector<storage::ObjectRecord>> {
        if (!reader.ok()) return reader.status();
        return desk_.OpenForFetch(*reader, exam_id);
      });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::SubmitReport(
    grpc::CallbackServerContext* ctx, const rdg::v1::SubmitReportRequest* request,
    rdg::v1::ReportVersion* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto report, reports_.Submit(reader, *request));
    *response = api::ToProto(report);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::GetReports(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::GetReportsRequest* request,
                                                         rdg::v1::GetReportsResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(
        auto reports, reports_.Versions(reader, request->exam_id(), request->break_glass_reason()));
    for (const auto& v : reports.versions) *response->add_versions() = api::ToProto(v);
    response->set_desk(reports.desk);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::GetPriors(grpc::CallbackServerContext* ctx,
                                                        const rdg::v1::PriorsRequest* request,
                                                        rdg::v1::PriorsResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto view,
                         desk_.Priors(reader, request->exam_id(), request->break_glass_reason()));
    for (const auto& p : view.priors) *response->add_priors() = api::ToProto(p, directory_);
    for (const auto& r : view.lab_results) *response->add_lab_results() = api::ToProto(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ReadingServiceImpl::EscalateExam(grpc::CallbackServerContext* ctx,
                                                           const rdg::v1::EscalateRequest* request,
                                                           rdg::v1::Exam* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto reader, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto exam, desk_.Escalate(reader, request->exam_id(), request->reason()));
    *response = api::ToProto(exam, directory_);
    return absl::OkStatus();
  });
}

}  // namespace rdg::api
