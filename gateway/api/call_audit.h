// The audit record of every call the gateway refuses. Successful accesses are audited where they
// happen — by the desks and services, with what they did. A refused call never gets that far, so
// this interceptor writes its record: the method (in the log's snake_case: GetExam → "get_exam"),
// the outcome (the gRPC status code's name), the status message, the caller's address and
// certificate subject, the principal when the certificate names one, and the exam the request
// names (its `exam_id`, at the top or one message down). The store adds the exam's patient.
//
// Not refusals of access, so not written here: answers about capacity (UNAVAILABLE,
// RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED) and cancellations; /metrics counts those.
//
// The records are appended on the worker pool, never on gRPC's threads.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/common/clock.h"
#include "gateway/config/institution_directory.h"
#include "storage/base/worker_pool.h"
#include "storage/index/audit_store.h"
#include "storage/records.h"

namespace rdg::api {

//! Whether an answer with `code` refuses access (and so is audited here).
bool IsRefusal(grpc::StatusCode code);

//! What is known of a refused call.
struct RefusedCall {
  absl::string_view method;           //!< "/rdg.v1.ExamService/GetExam"
  const grpc::Status& status;         //!< the answer
  absl::string_view peer;             //!< the caller's address, as gRPC names it
  absl::string_view certificate_pem;  //!< the client certificate TLS verified ("" if none)
  absl::string_view exam_id;          //!< from the request, "" if it names none
};

//! The audit record of `call`, made at `at`.
storage::AuditRecord RefusalRecord(const RefusedCall& call,
                                   const config::InstitutionDirectory& directory, absl::Time at);

//! Appends `record` to `audit` on `pool` (a failure is logged): for code on gRPC's threads.
void AppendAuditLater(storage::AuditStore& audit, WorkerPool& pool, storage::AuditRecord record);

//! The interceptor factory to install on the gateway's ServerBuilder. All references must outlive
//! the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewRefusalAuditInterceptorFactory(storage::AuditStore& audit, WorkerPool& pool, const Clock& clock,
                                  const config::InstitutionDirectory& directory);

}  // namespace rdg::api
