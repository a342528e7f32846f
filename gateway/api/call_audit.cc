#include "gateway/api/call_audit.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cctype>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "gateway/api/request_limits.h"
#include "gateway/auth/principal.h"
#include "gateway/common/audit_throttle.h"
#include "gateway/signing/certificate.h"
#include "glog/logging.h"
#include "storage/formats/text.h"

namespace rdg::api {
namespace {

using grpc::experimental::InterceptionHookPoints;

//! Bytes of a status message kept in the log.
constexpr size_t kMaxMessageBytes = 1024;

//! `text` as a field of the log: valid UTF-8, no control characters, at most `max_bytes`.
std::string Field(absl::string_view text, size_t max_bytes) {
  return formats::Utf8Prefix(formats::WithoutControls(formats::ToValidUtf8(text)), max_bytes);
}

//! "/rdg.v1.ExamService/GetExam" → "get_exam".
std::string ActionOf(absl::string_view method) {
  const size_t slash = method.rfind('/');
  absl::string_view name = slash == absl::string_view::npos ? method : method.substr(slash + 1);
  std::string action;
  for (char c : name) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!action.empty()) action.push_back('_');
      action.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      action.push_back(c);
    }
  }
  return action;
}

//! The `exam_id` string field of `message`, or of a message field directly in it; "" if none.
std::string ExamIdOf(const google::protobuf::Message& message) {
  const google::protobuf::Descriptor* type = message.GetDescriptor();
  const google::protobuf::Reflection* reflection = message.GetReflection();
  if (const auto* field = type->FindFieldByName("exam_id");
      field != nullptr && field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
      !field->is_repeated()) {
    return reflection->GetString(message, field);
  }
  for (int i = 0; i < type->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = type->field(i);
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE || field->is_repeated() ||
        !reflection->HasField(message, field)) {
      continue;
    }
    const google::protobuf::Message& inner = reflection->GetMessage(message, field);
    const auto* id = inner.GetDescriptor()->FindFieldByName("exam_id");
    if (id != nullptr && id->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        !id->is_repeated()) {
      return inner.GetReflection()->GetString(inner, id);
    }
  }
  return std::string();
}

//! Whether `method` is one of the gateway's protobuf methods (and so what gRPC hands the
//! interceptor as the received message is that method's request type).
bool IsProtobufMethod(absl::string_view method) {
  const std::string full_name = absl::StrReplaceAll(absl::StripPrefix(method, "/"), {{"/", "."}});
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full_name) != nullptr;
}

class RefusalAuditInterceptor : public grpc::experimental::Interceptor {
 public:
  RefusalAuditInterceptor(grpc::experimental::ServerRpcInfo* info, storage::AuditStore& audit,
                          WorkerPool& pool, const Clock& clock,
                          const config::InstitutionDirectory& directory, AuditThrottle& throttle)
      : info_(info),
        throttle_(throttle),
        audit_(audit),
        pool_(pool),
        clock_(clock),
        directory_(directory),
        method_(info->method()),
        protobuf_method_(IsProtobufMethod(method_)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // The first message only: an upload stream's chunks name no exam, and are the hot path.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        !request_seen_ && protobuf_method_ && methods->GetRecvMessage() != nullptr) {
      request_seen_ = true;
      // gRPC hands over the request as void*; for a protobuf method it is that method's
      // generated request type, a google::protobuf::Message.
      const auto* request =
          static_cast<const google::protobuf::Message*>(methods->GetRecvMessage());
      exam_id_ = Field(ExamIdOf(*request), kMaxIdBytes);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok() && IsRefusal(status.error_code())) Write(status);
    }
    methods->Proceed();
  }

 private:
  void Write(const grpc::Status& status) {
    grpc::ServerContextBase* ctx = info_->server_context();
    std::string pem;
    if (auto auth = ctx->auth_context(); auth != nullptr) {
      auto values = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
      if (!values.empty()) pem.assign(values.front().data(), values.front().size());
    }
    const absl::Time now = clock_.Now();
    storage::AuditRecord record = RefusalRecord(
        RefusedCall{method_, status, PeerName(ctx->peer()), pem, exam_id_}, directory_, now);
    if (record.institution.empty()) {
      // Nobody the platform knows: at most one record per address a minute.
      const std::optional<int64_t> left_out = throttle_.Admit(PeerAddress(record.peer), now);
      if (!left_out) return;
      record.detail += AuditThrottle::LeftOut(*left_out);
    }
    AppendAuditLater(audit_, pool_, std::move(record));
  }

  grpc::experimental::ServerRpcInfo* const info_;
  AuditThrottle& throttle_;
  storage::AuditStore& audit_;
  WorkerPool& pool_;
  const Clock& clock_;
  const config::InstitutionDirectory& directory_;
  const std::string method_;
  const bool protobuf_method_;
  std::string exam_id_;
  bool request_seen_ = false;
};

class RefusalAuditInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RefusalAuditInterceptorFactory(storage::AuditStore& audit, WorkerPool& pool, const Clock& clock,
                                 const config::InstitutionDirectory& directory)
      : audit_(audit), pool_(pool), clock_(clock), directory_(directory) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RefusalAuditInterceptor(info, audit_, pool_, clock_, directory_, throttle_);
  }

 private:
  storage::AuditStore& audit_;
  WorkerPool& pool_;
  const Clock& clock_;
  const config::InstitutionDirectory& directory_;
  AuditThrottle throttle_;  //!< for callers without a usable certificate
};

}  // namespace

void AppendAuditLater(storage::AuditStore& audit, WorkerPool& pool, storage::AuditRecord record) {
  pool.Post([&audit, record = std::move(record)] {
    if (absl::Status written = audit.AppendAudit(record); !written.ok()) {
      LOG(ERROR) << "audit record " << record.action << " (" << record.outcome
                 << ") not written: " << written;
    }
  });
}

bool IsRefusal(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return false;
    default:
      return true;
  }
}

storage::AuditRecord RefusalRecord(const RefusedCall& call,
                                   const config::InstitutionDirectory& directory, absl::Time at) {
  storage::AuditRecord r;
  if (!call.certificate_pem.empty()) {
    // The principal the certificate names, when it names one (a refusal may be exactly that it
    // does not), and always its subject.
    if (auto who = auth::PrincipalFromCertificate(call.certificate_pem, directory); who.ok()) {
      r = auth::AuditBy(*who, at, "");
    }
    r.subject = signing::SubjectLine(call.certificate_pem);
  }
  r.at = at;
  if (IsProtobufMethod(call.method)) {
    r.action = ActionOf(call.method);
  } else {  // a name the client made up: not an action of the log
    r.action = "unknown_method";
    r.detail = absl::StrCat(Field(call.method, 256), ": ");
  }
  r.exam_id = Field(call.exam_id, kMaxIdBytes);
  // absl and gRPC share the canonical code numbering: "PERMISSION_DENIED", "NOT_FOUND", …
  r.outcome = absl::StatusCodeToString(static_cast<absl::StatusCode>(call.status.error_code()));
  r.detail += Field(call.status.error_message(), kMaxMessageBytes);
  r.peer = std::string(call.peer);
  return r;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewRefusalAuditInterceptorFactory(storage::AuditStore& audit, WorkerPool& pool, const Clock& clock,
                                  const config::InstitutionDirectory& directory) {
  return std::make_unique<RefusalAuditInterceptorFactory>(audit, pool, clock, directory);
}

}  // namespace rdg::api
