// Requests whose bytes do not decode. gRPC's callback API answers them UNIMPLEMENTED with an
// empty message (grpcpp's server_callback_handlers.h: a failed deserialization looks like a
// missing method), so a clinic whose client put GB18030 text into a string field learnt nothing.
// This interceptor rewrites that answer to INVALID_ARGUMENT naming the method's request type and,
// when the cause is text that is not UTF-8, the field.
//
// How the field is known: protobuf reports a string field with invalid UTF-8 only through its
// log ("String field 'rdg.v1.X.y' contains invalid UTF-8 data when parsing …"). A log handler
// keeps that line for the current thread; gRPC deserializes a request and runs the
// POST_RECV_MESSAGE interception on the same thread, where the interceptor takes it. A field
// name is used only when the method's request type can contain it, so a stale line from another
// parse on that thread is never blamed on a request.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace rdg::api {

//! The interceptor factory to install on the gateway's ServerBuilder. Installs the protobuf log
//! handler on first use (once per process; other log lines still reach the previous handler).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewRequestDecodingInterceptorFactory();

//! The clinic-facing message for a request of `method` ("/rdg.v1.ExamService/GetExam") that did
//! not decode; `protobuf_error` is what protobuf logged while parsing it (may be empty).
std::string UndecodableRequestMessage(absl::string_view method, absl::string_view protobuf_error);

}  // namespace rdg::api
