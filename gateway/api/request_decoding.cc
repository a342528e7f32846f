#include "gateway/api/request_decoding.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/logging.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace rdg::api {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kUtf8Marker = "contains invalid UTF-8 data when parsing";

// What protobuf last logged about invalid UTF-8 on this thread, taken by the next interception.
thread_local std::string t_utf8_error;
google::protobuf::LogHandler* g_previous_handler = nullptr;

void RecordingLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                         const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_ERROR && absl::StrContains(message, kUtf8Marker)) {
    t_utf8_error = message;  // answered to the client instead; not worth a log line per call
    return;
  }
  if (g_previous_handler != nullptr) g_previous_handler(level, filename, line, message);
}

void InstallLogHandlerOnce() {
  static std::once_flag once;
  std::call_once(
      once, [] { g_previous_handler = google::protobuf::SetLogHandler(&RecordingLogHandler); });
}

// "String field 'rdg.v1.X.y' contains …" → "rdg.v1.X.y"; empty when the line has another shape.
std::string FieldOf(absl::string_view protobuf_error) {
  const size_t open = protobuf_error.find('\'');
  if (open == absl::string_view::npos) return "";
  const size_t close = protobuf_error.find('\'', open + 1);
  if (close == absl::string_view::npos) return "";
  return std::string(protobuf_error.substr(open + 1, close - open - 1));
}

// True when a message of type `root` can contain `field` at any depth.
bool CanContain(const google::protobuf::Descriptor* root,
                const google::protobuf::FieldDescriptor* field) {
  absl::flat_hash_set<const google::protobuf::Descriptor*> seen{root};
  std::vector<const google::protobuf::Descriptor*> todo{root};
  while (!todo.empty()) {
    const google::protobuf::Descriptor* type = todo.back();
    todo.pop_back();
    if (type == field->containing_type()) return true;
    for (int i = 0; i < type->field_count(); ++i) {
      const google::protobuf::Descriptor* child = type->field(i)->message_type();
      if (child != nullptr && seen.insert(child).second) todo.push_back(child);
    }
  }
  return false;
}

class RequestDecodingInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit RequestDecodingInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method()),
        single_request_(info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY ||
                        info->type() == grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING) {
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      std::string error = std::exchange(t_utf8_error, std::string());
      // No message: a request that did not decode, or (on a client stream) the end of the
      // stream, told apart by what protobuf logged.
      if (methods->GetRecvMessage() == nullptr && !undecodable_ &&
          (single_request_ || !error.empty())) {
        undecodable_ = true;
        message_ = UndecodableRequestMessage(method_, error);
      }
    }
    if (undecodable_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        !methods->GetSendStatus().ok()) {
      methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message_));
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  const bool single_request_;
  bool undecodable_ = false;
  std::string message_;
};

class RequestDecodingInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RequestDecodingInterceptor(info);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewRequestDecodingInterceptorFactory() {
  InstallLogHandlerOnce();
  return std::make_unique<RequestDecodingInterceptorFactory>();
}

std::string UndecodableRequestMessage(absl::string_view method, absl::string_view protobuf_error) {
  // "/rdg.v1.ExamService/GetExam" → "rdg.v1.ExamService.GetExam"
  const std::string full_name = absl::StrReplaceAll(absl::StripPrefix(method, "/"), {{"/", "."}});
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  const google::protobuf::MethodDescriptor* descriptor = pool->FindMethodByName(full_name);
  if (descriptor == nullptr) {
    return absl::StrCat("the request to ", method, " could not be read");
  }
  const google::protobuf::Descriptor* request = descriptor->input_type();
  const std::string prefix =
      absl::StrCat("the request to ", descriptor->name(), " could not be read: ");
  if (!protobuf_error.empty()) {
    const google::protobuf::FieldDescriptor* field = pool->FindFieldByName(FieldOf(protobuf_error));
    if (field != nullptr && CanContain(request, field)) {
      return absl::StrCat(prefix, "field ", field->full_name(),
                          " is not valid UTF-8; text must be sent as UTF-8 (convert GB18030 or "
                          "Latin-1 text first)");
    }
  }
  return absl::StrCat(prefix, "it is not a valid ", request->full_name(),
                      " message (corrupt or truncated, or a text field that is not UTF-8)");
}

}  // namespace rdg::api
