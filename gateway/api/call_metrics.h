// Every call's method, status code and time to its answer, into monitoring::RpcMetrics
// (/metrics: rdg_grpc_server_handled_total, rdg_grpc_server_handling_seconds).
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "gateway/monitoring/rpc_metrics.h"

namespace rdg::api {

//! The interceptor factory to install on the gateway's ServerBuilder; `metrics` must outlive the
//! server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewCallMetricsInterceptorFactory(monitoring::RpcMetrics& metrics);

}  // namespace rdg::api
