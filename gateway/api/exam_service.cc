#include "gateway/api/exam_service.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "gateway/api/object_stream.h"
#include "gateway/auth/rbac.h"
#include "storage/base/status_macros.h"
#include "storage/vocabulary_proto.h"

namespace rdg::api {
namespace {

// A page of GetExam's objects ends at an object: its sort key, NUL-separated (UIDs hold no NUL),
// web-safe base64.
std::string ObjectPageToken(const storage::ObjectRecord& last) {
  return absl::WebSafeBase64Escape(absl::StrCat(last.series_instance_uid, std::string(1, '\0'),
                                                last.instance_number, std::string(1, '\0'),
                                                last.sop_instance_uid));
}

absl::StatusOr<storage::ObjectCursor> ParseObjectPageToken(const std::string& token) {
  std::string raw;
  std::vector<std::string> parts;
  if (absl::WebSafeBase64Unescape(token, &raw)) parts = absl::StrSplit(raw, '\0');
  storage::ObjectCursor cursor;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &cursor.instance_number)) {
    return absl::InvalidArgumentError("page_token is not one this gateway issued");
  }
  cursor.series_instance_uid = std::move(parts[0]);
  cursor.sop_instance_uid = std::move(parts[2]);
  return cursor;
}

}  // namespace

absl::StatusOr<storage::ExamRecord> ExamServiceImpl::OpenExam(const auth::Principal& principal,
                                                              const std::string& exam_id,
                                                              absl::string_view action) {
  RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kDownloadExam));
  RDG_ASSIGN_OR_RETURN(auto exam, stores_.exams.GetExam(exam_id));
  RDG_RETURN_IF_ERROR(
      auth::AuthorizeExamAccess(principal, exam_id, exam ? exam->origin_institution : ""));
  RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
      auth::AuditBy(principal, clock_.Now(), std::string(action), exam_id, "")));
  return *std::move(exam);
}

grpc::ServerUnaryReactor* ExamServiceImpl::ListExams(grpc::CallbackServerContext* ctx,
                                                     const rdg::v1::ListExamsRequest* request,
                                                     rdg::v1::ListExamsResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, authenticator_.Authenticate(*ctx));
    RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kListOwnExams));
    storage::ExamQuery query;
    query.origin_institution = principal.institution;
    query.limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 100;
    if (request->state() != rdg::v1::EXAM_STATE_UNSPECIFIED)
      query.state = storage::FromProto(request->state());
    if (!request->page_token().empty() &&
        !absl::SimpleAtoi(request->page_token(), &query.before_seq)) {
      return absl::InvalidArgumentError("page_token is not one this gateway issued");
    }
    RDG_ASSIGN_OR_RETURN(auto page, stores_.exams.ListExams(query));
    for (const auto& exam : page.exams) *response->add_exams() = ToProto(exam, directory_);
    if (page.next_before_seq > 0) response->set_next_page_token(absl::StrCat(page.next_before_seq));
    return stores_.audit.AppendAudit(auth::AuditBy(principal, clock_.Now(), "list_exams", "",
                                                   absl::StrCat(page.exams.size(), " exams")));
  });
}

grpc::ServerUnaryReactor* ExamServiceImpl::GetExam(grpc::CallbackServerContext* ctx,
                                                   const rdg::v1::GetExamRequest* request,
                                                   rdg::v1::GetExamResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, authenticator_.Authenticate(*ctx));
    RDG_ASSIGN_OR_RETURN(auto exam, OpenExam(principal, request->exam_id(), "get_exam"));
    *response->mutable_exam() = ToProto(exam, directory_);
    std::optional<storage::ObjectCursor> after;
    if (!request->page_token().empty()) {
      RDG_ASSIGN_OR_RETURN(after, ParseObjectPageToken(request->page_token()));
    }
    const int limit = request->page_size() > 0 ? std::min(request->page_size(), 5000) : 1000;
    RDG_ASSIGN_OR_RETURN(auto objects, stores_.exams.ListObjectsPage(exam.exam_id, after, limit));
    for (const auto& o : objects) *response->add_objects() = ToProto(o);
    if (static_cast<int>(objects.size()) == limit) {
      response->set_next_page_token(ObjectPageToken(objects.back()));
    }
    if (!after.has_value()) {
      RDG_ASSIGN_OR_RETURN(auto events, stores_.exams.ListEvents(exam.exam_id));
      for (const auto& e : events) *response->add_events() = ToProto(e);
    }
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* ExamServiceImpl::DownloadExam(
    grpc::CallbackServerContext* ctx, const rdg::v1::DownloadExamRequest* request) {
  // The context is read here, on gRPC's thread; the loader runs on the pool.
  absl::StatusOr<auth::Principal> principal = authenticator_.Authenticate(*ctx);
  if (auto limits = CheckRequestLimits(*request); !limits.ok()) principal = limits;
  return new ObjectStreamReactor(
      pool_, blobs_,
      [this, principal,
       exam_id = request->exam_id()]() -> absl::StatusOr<std::vector<storage::ObjectRecord>> {
        if (!principal.ok()) return principal.status();
        RDG_ASSIGN_OR_RETURN(auto exam, OpenExam(*principal, exam_id, "download_exam"));
        return stores_.exams.ListObjects(exam.exam_id);
      });
}

}  // namespace rdg::api
