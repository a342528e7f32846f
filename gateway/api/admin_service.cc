#include "gateway/api/admin_service.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "gateway/auth/rbac.h"
#include "storage/status_macros.h"

namespace rdg::api {

absl::StatusOr<auth::Principal> AdminServiceImpl::Administrator(grpc::CallbackServerContext* ctx) {
  RDG_ASSIGN_OR_RETURN(auto principal, Authenticate(ctx, directory_));
  RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kAdminister));
  return principal;
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetQueues(grpc::CallbackServerContext* ctx,
                                                      const rdg::v1::QueuesRequest* /*request*/,
                                                      rdg::v1::QueuesResponse* response) {
  return RunUnary(ctx, pool_, [this, ctx, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    const absl::Time now = clock_.Now();
    RDG_ASSIGN_OR_RETURN(auto figures, index_.ListQueueFigures(now));
    std::map<std::string, storage::QueueFigureRecord> by_queue;
    for (const auto& q : queues_) by_queue[q].queue = q;
    for (auto& f : figures) by_queue[f.queue] = std::move(f);  // also queues no longer configured
    for (const auto& [name, f] : by_queue) {
      rdg::v1::QueueFigures* out = response->add_queues();
      out->set_queue(name);
      out->set_depth(f.depth);
      out->set_claimed(f.claimed);
      out->set_overdue(f.overdue);
      if (f.oldest_waiting_since) {
        *out->mutable_oldest_waiting() = ToDurationProto(now - *f.oldest_waiting_since);
      }
    }
    return index_.AppendAudit({0, now, principal.institution, principal.user, principal.role,
                               "admin_queues", "", ""});
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::QueryAudit(grpc::CallbackServerContext* ctx,
                                                       const rdg::v1::AuditRequest* request,
                                                       rdg::v1::AuditResponse* response) {
  return RunUnary(ctx, pool_, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    storage::AuditQuery query;
    query.exam_id = request->exam_id();
    query.user = request->user();
    query.limit = request->limit() > 0 ? std::min(request->limit(), 10000) : 100;
    if (request->has_since()) query.since = FromTimestamp(request->since());
    RDG_ASSIGN_OR_RETURN(auto entries, index_.ListAudit(query));
    for (const auto& e : entries) {
      rdg::v1::AuditEntry* out = response->add_entries();
      out->set_seq(e.seq);
      *out->mutable_at() = ToTimestamp(e.at);
      out->set_institution(e.institution);
      out->set_user(e.user);
      out->set_role(e.role);
      out->set_action(e.action);
      out->set_exam_id(e.exam_id);
      out->set_detail(e.detail);
    }
    // Reading the audit log is itself audited.
    return index_.AppendAudit({0, clock_.Now(), principal.institution, principal.user,
                               principal.role, "admin_audit", request->exam_id(),
                               request->user().empty() ? "" : absl::StrCat("user ", request->user())});
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetTurnaround(
    grpc::CallbackServerContext* ctx, const rdg::v1::TurnaroundRequest* /*request*/,
    rdg::v1::TurnaroundResponse* /*response*/) {
  return RunUnary(ctx, pool_, [this, ctx]() -> absl::Status {
    RDG_RETURN_IF_ERROR(Administrator(ctx).status());
    return absl::UnimplementedError("turnaround figures are not implemented by this gateway yet");
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListBreaches(
    grpc::CallbackServerContext* ctx, const rdg::v1::BreachesRequest* /*request*/,
    rdg::v1::BreachesResponse* /*response*/) {
  return RunUnary(ctx, pool_, [this, ctx]() -> absl::Status {
    RDG_RETURN_IF_ERROR(Administrator(ctx).status());
    return absl::UnimplementedError("SLA breach records are not implemented by this gateway yet");
  });
}

}  // namespace rdg::api
