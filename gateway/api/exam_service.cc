#include "gateway/api/exam_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "gateway/auth/rbac.h"
#include "storage/status_macros.h"

namespace rdg::api {
namespace {
constexpr size_t kDownloadChunkBytes = 1 << 20;
}  // namespace

absl::StatusOr<storage::ExamRecord> ExamServiceImpl::OpenExam(grpc::CallbackServerContext* ctx,
                                                              const std::string& exam_id,
                                                              absl::string_view action) {
  RDG_ASSIGN_OR_RETURN(auto principal, Authenticate(ctx, directory_));
  RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kDownloadExam));
  RDG_ASSIGN_OR_RETURN(auto exam, index_.GetExam(exam_id));
  RDG_RETURN_IF_ERROR(auth::AuthorizeExamAccess(principal, exam_id,
                                                exam ? exam->origin_institution : ""));
  RDG_RETURN_IF_ERROR(index_.AppendAudit({0, clock_.Now(), principal.institution, principal.user,
                                          principal.role, std::string(action), exam_id, ""}));
  return *std::move(exam);
}

grpc::ServerUnaryReactor* ExamServiceImpl::ListExams(grpc::CallbackServerContext* ctx,
                                                     const rdg::v1::ListExamsRequest* request,
                                                     rdg::v1::ListExamsResponse* response) {
  return RunUnary(ctx, pool_, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Authenticate(ctx, directory_));
    RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kListOwnExams));
    storage::ExamQuery query;
    query.origin_institution = principal.institution;
    query.limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 100;
    if (request->state() != rdg::v1::EXAM_STATE_UNSPECIFIED) query.state = request->state();
    if (!request->page_token().empty() &&
        !absl::SimpleAtoi(request->page_token(), &query.before_seq)) {
      return absl::InvalidArgumentError("page_token is not one this gateway issued");
    }
    RDG_ASSIGN_OR_RETURN(auto page, index_.ListExams(query));
    for (const auto& exam : page.exams) *response->add_exams() = ToProto(exam);
    if (page.next_before_seq > 0) response->set_next_page_token(absl::StrCat(page.next_before_seq));
    return index_.AppendAudit({0, clock_.Now(), principal.institution, principal.user,
                               principal.role, "list_exams", "",
                               absl::StrCat(page.exams.size(), " exams")});
  });
}

grpc::ServerUnaryReactor* ExamServiceImpl::GetExam(grpc::CallbackServerContext* ctx,
                                                   const rdg::v1::GetExamRequest* request,
                                                   rdg::v1::GetExamResponse* response) {
  return RunUnary(ctx, pool_, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto exam, OpenExam(ctx, request->exam_id(), "get_exam"));
    *response->mutable_exam() = ToProto(exam);
    RDG_ASSIGN_OR_RETURN(auto objects, index_.ListObjects(exam.exam_id));
    for (const auto& o : objects) *response->add_objects() = ToProto(o);
    RDG_ASSIGN_OR_RETURN(auto events, index_.ListEvents(exam.exam_id));
    for (const auto& e : events) *response->add_events() = ToProto(e);
    return absl::OkStatus();
  });
}

//! Streams an exam's objects chunk by chunk; one chunk in memory at a time.
class DownloadReactor final : public grpc::ServerWriteReactor<rdg::v1::ObjectChunk> {
 public:
  DownloadReactor(ExamServiceImpl& service, grpc::CallbackServerContext* ctx, std::string exam_id)
      : service_(service), ctx_(ctx), exam_id_(std::move(exam_id)) {
    service_.pool_.Post([this] { Start(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled"));
      return;
    }
    service_.pool_.Post([this] { Next(); });
  }

  void OnDone() override { delete this; }

 private:
  void Start() {
    absl::Status s = Load();
    if (!s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    Next();
  }

  absl::Status Load() {
    RDG_ASSIGN_OR_RETURN(auto exam, service_.OpenExam(ctx_, exam_id_, "download_exam"));
    RDG_ASSIGN_OR_RETURN(objects_, service_.index_.ListObjects(exam.exam_id));
    return absl::OkStatus();
  }

  void Next() {
    absl::Status s = Fill();
    if (!s.ok()) {
      Finish(ToGrpcStatus(s));
    } else if (done_) {
      Finish(grpc::Status::OK);
    } else {
      StartWrite(&chunk_);
    }
  }

  //! Fills chunk_ with the next piece of the current object, or sets done_.
  absl::Status Fill() {
    chunk_.Clear();
    if (reader_ == nullptr) {
      if (index_ >= objects_.size()) {
        done_ = true;
        return absl::OkStatus();
      }
      const auto& object = objects_[index_];
      RDG_ASSIGN_OR_RETURN(auto digest, storage::DigestFromHexOrRaw(object.sha256_hex));
      auto reader = service_.blobs_.Open(digest);
      if (!reader.ok()) {
        return absl::DataLossError(absl::StrCat("stored object ", object.sop_instance_uid,
                                                " is unreadable: ", reader.status().message()));
      }
      reader_ = *std::move(reader);
      offset_ = 0;
      *chunk_.mutable_object() = ToProto(object);
    }
    std::string* data = chunk_.mutable_data();
    data->resize(std::min<int64_t>(kDownloadChunkBytes, reader_->Size() - offset_));
    size_t filled = 0;
    while (filled < data->size()) {
      RDG_ASSIGN_OR_RETURN(size_t n, reader_->ReadAt(offset_ + static_cast<int64_t>(filled),
                                                     data->data() + filled, data->size() - filled));
      if (n == 0) return absl::DataLossError("stored object is shorter than indexed");
      filled += n;
    }
    chunk_.set_offset(offset_);
    offset_ += static_cast<int64_t>(filled);
    if (offset_ >= reader_->Size()) {
      reader_.reset();
      ++index_;
    }
    return absl::OkStatus();
  }

  ExamServiceImpl& service_;
  grpc::CallbackServerContext* ctx_;
  const std::string exam_id_;
  std::vector<storage::ObjectRecord> objects_;
  size_t index_ = 0;
  std::unique_ptr<storage::BlobReader> reader_;
  int64_t offset_ = 0;
  bool done_ = false;
  rdg::v1::ObjectChunk chunk_;
};

grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* ExamServiceImpl::DownloadExam(
    grpc::CallbackServerContext* ctx, const rdg::v1::DownloadExamRequest* request) {
  return new DownloadReactor(*this, ctx, request->exam_id());
}

}  // namespace rdg::api
