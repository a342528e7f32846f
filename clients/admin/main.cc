// rdg-admin: figures for administrators (county/province health commission, hospital IT) from
// the gateway's AdminService, with an admin certificate. Aligned tables on a terminal, --json
// for scripts. Turnaround (`tat`) and SLA breaches arrive with the gateway's turnaround work.
#include <CLI/CLI.hpp>
#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <iostream>
#include <string>

#include "clients/common/connection.h"
#include "clients/common/output.h"
#include "rdg/v1/admin.grpc.pb.h"

namespace {

constexpr int kExitFailure = 1;

//! "24h", "90m", "7d" → seconds; -1 when not understood.
int64_t ParseSpan(const std::string& text) {
  if (text.size() < 2) return -1;
  const char unit = text.back();
  int64_t n = 0;
  try {
    n = std::stoll(text.substr(0, text.size() - 1));
  } catch (...) {
    return -1;
  }
  switch (unit) {
    case 'm': return n * 60;
    case 'h': return n * 3600;
    case 'd': return n * 86400;
    default: return -1;
  }
}

int Fail(const grpc::Status& s) {
  std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
  return kExitFailure;
}

int RunQueues(rdg::v1::AdminService::Stub& stub, bool as_json) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  rdg::v1::QueuesResponse resp;
  if (auto s = stub.GetQueues(&ctx, rdg::v1::QueuesRequest(), &resp); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(resp) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"QUEUE", "DEPTH", "BEING READ", "WAITING", "OLDEST WAITING", "OVERDUE"}};
  for (const auto& q : resp.queues()) {
    rows.push_back({q.queue(), std::to_string(q.depth()), std::to_string(q.claimed()),
                    std::to_string(q.depth() - q.claimed()),
                    q.has_oldest_waiting()
                        ? rdg::clients::HumanDuration(q.oldest_waiting().seconds())
                        : "-",
                    std::to_string(q.overdue())});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunAudit(rdg::v1::AdminService::Stub& stub, const std::string& exam, const std::string& user,
             const std::string& since, int limit, bool as_json) {
  rdg::v1::AuditRequest req;
  req.set_exam_id(exam);
  req.set_user(user);
  req.set_limit(limit);
  if (!since.empty()) {
    const int64_t seconds = ParseSpan(since);
    if (seconds < 0) {
      std::cerr << "error: --since takes a span such as 90m, 24h or 7d\n";
      return 2;
    }
    *req.mutable_since() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
        std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::system_clock::now().time_since_epoch()).count() - seconds);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  rdg::v1::AuditResponse resp;
  if (auto s = stub.QueryAudit(&ctx, req, &resp); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(resp) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "AT", "INSTITUTION", "USER", "ROLE", "ACTION", "EXAM", "DETAIL"}};
  for (const auto& e : resp.entries()) {
    rows.push_back({std::to_string(e.seq()), rdg::clients::LocalTime(e.at()), e.institution(),
                    e.user(), rdg::v1::Role_Name(e.role()), e.action(), e.exam_id(), e.detail()});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rdg-admin: queue backlogs and the audit log of the Remote Diagnosis Gateway"};
  app.require_subcommand(1);
  rdg::clients::ConnectionOptions conn;
  conn.AddTo(app);
  bool as_json = false;
  app.add_flag("--json", as_json, "machine-readable output");
  auto* queues = app.add_subcommand("queues", "every reading queue: depth, being read, oldest "
                                               "waiting, overdue");
  queues->add_flag("--json", as_json, "machine-readable output");
  auto* audit = app.add_subcommand("audit", "the audit log, newest first");
  std::string exam, user, since;
  int limit = 100;
  audit->add_option("--exam", exam, "only this exam");
  audit->add_option("--user", user, "only this user");
  audit->add_option("--since", since, "only the last span, e.g. 24h, 90m, 7d");
  audit->add_option("--limit", limit, "at most this many")->capture_default_str();
  audit->add_flag("--json", as_json, "machine-readable output");
  CLI11_PARSE(app, argc, argv);
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::AdminService::NewStub(channel);
  if (*queues) return RunQueues(*stub, as_json);
  return RunAudit(*stub, exam, user, since, limit, as_json);
}
