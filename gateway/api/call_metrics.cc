#include "gateway/api/call_metrics.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace rdg::api {
namespace {

using grpc::experimental::InterceptionHookPoints;

class CallMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  CallMetricsInterceptor(grpc::experimental::ServerRpcInfo* info, monitoring::RpcMetrics& metrics)
      : metrics_(metrics), method_(info->method()), started_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const auto code = static_cast<absl::StatusCode>(methods->GetSendStatus().error_code());
      metrics_.Record(method_, absl::StatusCodeToString(code), absl::Now() - started_);
    }
    methods->Proceed();
  }

 private:
  monitoring::RpcMetrics& metrics_;
  const std::string method_;
  const absl::Time started_;
};

class CallMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallMetricsInterceptorFactory(monitoring::RpcMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallMetricsInterceptor(info, metrics_);
  }

 private:
  monitoring::RpcMetrics& metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewCallMetricsInterceptorFactory(monitoring::RpcMetrics& metrics) {
  return std::make_unique<CallMetricsInterceptorFactory>(metrics);
}

}  // namespace rdg::api
