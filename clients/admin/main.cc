// rdg-admin: figures for administrators (county/province health commission, hospital IT) from
// the gateway's AdminService, with an admin certificate. Aligned tables on a terminal, --json
// for scripts: turnaround times (`tat`), queue backlogs, SLA breaches, the audit log, the
// patient-identity review list (`identity-conflicts`), backups and the pushes to the
// institutions' PACS and HIS (`outbound`).
#include <google/protobuf/util/time_util.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "clients/admin/audit_verify.h"
#include "clients/admin/backup.h"
#include "clients/common/connection.h"
#include "clients/common/output.h"
#include "rdg/v1/admin.grpc.pb.h"
#include "storage/base/version.h"

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
    case 'm':
      return n * 60;
    case 'h':
      return n * 3600;
    case 'd':
      return n * 86400;
    default:
      return -1;
  }
}

constexpr int kExitUsage = 2;

//! A moment for --since/--until: a span ago ("24h", "90m", "7d"), an RFC 3339 time
//! ("2026-11-20T08:00:00+08:00") or a UTC date ("2026-11-20"). False, with a message naming
//! `option`, when it is none of these.
bool ParseWhen(const std::string& option, const std::string& text,
               google::protobuf::Timestamp* out) {
  const int64_t seconds = ParseSpan(text);
  if (seconds >= 0) {
    *out = google::protobuf::util::TimeUtil::SecondsToTimestamp(
        std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count() -
        seconds);
    return true;
  }
  if (google::protobuf::util::TimeUtil::FromString(text, out)) return true;
  if (text.size() == 10 && google::protobuf::util::TimeUtil::FromString(text + "T00:00:00Z", out)) {
    return true;
  }
  std::cerr << "error: " << option << " takes a span such as 90m, 24h or 7d, a time such as "
            << "2026-11-20T08:00:00+08:00 or a date such as 2026-11-20, not '" << text << "'\n";
  return false;
}

bool SetSince(const std::string& text, google::protobuf::Timestamp* out) {
  return ParseWhen("--since", text, out);
}

std::string Human(const google::protobuf::Duration& d) {
  return rdg::clients::HumanDuration(d.seconds());
}

int Fail(const grpc::Status& s) {
  std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
  return kExitFailure;
}

using Stub = rdg::v1::AdminService::Stub;

//! Calls `rpc` with a deadline. Returns the exit code when the command is done here — the call
//! failed (the reason printed) or --json printed the answer — and nullopt when the caller goes
//! on to print a table.
template <typename Request, typename Response>
std::optional<int> Call(Stub& stub,
                        grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
                        const Request& req, Response* resp, bool as_json, int seconds = 30) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  if (auto s = (stub.*rpc)(&ctx, req, resp); !s.ok()) return Fail(s);
  if (!as_json) return std::nullopt;
  std::cout << rdg::clients::ProtoToJson(*resp) << "\n";
  return 0;
}

int RunQueues(Stub& stub, bool as_json) {
  rdg::v1::QueuesResponse resp;
  if (auto done = Call(stub, &Stub::GetQueues, rdg::v1::QueuesRequest(), &resp, as_json)) {
    return *done;
  }
  std::vector<std::vector<std::string>> rows = {
      {"QUEUE", "NAME", "DEPTH", "BEING READ", "WAITING", "OLDEST WAITING", "OVERDUE"}};
  for (const auto& q : resp.queues()) {
    rows.push_back(
        {q.queue(), q.queue_name(), std::to_string(q.depth()), std::to_string(q.claimed()),
         std::to_string(q.depth() - q.claimed()),
         q.has_oldest_waiting() ? rdg::clients::HumanDuration(q.oldest_waiting().seconds()) : "-",
         std::to_string(q.overdue())});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunAudit(Stub& stub, const std::string& exam, const std::string& user, const std::string& since,
             int limit, bool as_json) {
  rdg::v1::AuditRequest req;
  req.set_exam_id(exam);
  req.set_user(user);
  req.set_limit(limit);
  if (!since.empty() && !SetSince(since, req.mutable_since())) return kExitUsage;
  rdg::v1::AuditResponse resp;
  if (auto done = Call(stub, &Stub::QueryAudit, req, &resp, as_json)) return *done;
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "AT", "INSTITUTION", "USER", "ROLE", "ACTION", "EXAM", "DETAIL"}};
  for (const auto& e : resp.entries()) {
    rows.push_back({std::to_string(e.seq()), rdg::clients::LocalTime(e.at()),
                    e.institution_name().empty() ? e.institution() : e.institution_name(), e.user(),
                    rdg::v1::Role_Name(e.role()), e.action(), e.exam_id(), e.detail()});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunAuditVerify(Stub& stub, int64_t from, const std::string& ca_path, bool as_json) {
  auto fetch = [&stub](int64_t from_seq) -> absl::StatusOr<rdg::v1::ExportAuditResponse> {
    rdg::v1::ExportAuditRequest req;
    req.set_from_seq(from_seq);
    rdg::v1::ExportAuditResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    if (auto s = stub.ExportAudit(&ctx, req, &resp); !s.ok()) {
      return absl::UnavailableError(rdg::clients::DescribeRpcError(s));
    }
    return resp;
  };
  absl::StatusOr<rdg::clients::AuditVerification> v =
      rdg::clients::VerifyAuditChain(fetch, from, ca_path);
  if (!v.ok()) {
    std::cerr << "error: " << v.status().message() << "\n";
    return kExitFailure;
  }
  if (as_json) {
    nlohmann::json out = {{"records", v->records},
                          {"first_seq", v->first_seq},
                          {"last_seq", v->last_seq},
                          {"checkpoints", v->checkpoints},
                          {"last_checkpoint_seq", v->last_checkpoint_seq},
                          {"last_checkpoint_time", v->last_checkpoint_time},
                          {"problems", v->problems},
                          {"ok", v->problems.empty()}};
    std::cout << out.dump(2) << "\n";
  } else {
    for (const std::string& p : v->problems) std::cout << p << "\n";
    std::cout << "audit chain: " << v->records << " records";
    if (v->records > 0) std::cout << " (" << v->first_seq << " to " << v->last_seq << ")";
    std::cout << ", " << v->checkpoints << " signed checkpoints verified";
    if (v->last_checkpoint_seq > 0) {
      std::cout << " (the last at record " << v->last_checkpoint_seq << ", signed "
                << v->last_checkpoint_time << ")";
    }
    std::cout << (v->problems.empty()
                      ? ": intact\n"
                      : ": " + std::to_string(v->problems.size()) + " problem(s)\n");
    if (v->last_seq > v->last_checkpoint_seq && v->problems.empty()) {
      std::cout << "records after the last checkpoint are covered by the chain alone\n";
    }
  }
  return v->problems.empty() ? 0 : kExitFailure;
}

int RunIdentityConflicts(Stub& stub, const std::string& since, int limit, bool as_json) {
  rdg::v1::IdentityConflictsRequest req;
  req.set_limit(limit);
  if (!since.empty() && !SetSince(since, req.mutable_since())) return kExitUsage;
  rdg::v1::IdentityConflictsResponse resp;
  if (auto done = Call(stub, &Stub::ListIdentityConflicts, req, &resp, as_json)) return *done;
  if (resp.conflicts().empty()) {
    std::cout << "no identity conflicts\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"SEQ", "DETECTED", "KIND", "EXAM", "FROM",
                                                 "OTHER EXAM", "OTHER FROM", "DISAGREE", "DETAIL"}};
  auto name = [](const std::string& shown, const std::string& id) {
    return shown.empty() ? (id.empty() ? "-" : id) : shown;
  };
  for (const auto& c : resp.conflicts()) {
    std::string fields;
    for (const auto& f : c.fields()) fields += (fields.empty() ? "" : ", ") + f;
    rows.push_back({std::to_string(c.seq()), rdg::clients::LocalTime(c.detected_at()),
                    rdg::v1::IdentityConflictKind_Name(c.kind()), c.exam_id(),
                    name(c.origin_name(), c.origin_institution()),
                    c.other_exam_id().empty() ? "-" : c.other_exam_id(),
                    name(c.other_name(), c.other_institution()), fields.empty() ? "-" : fields,
                    c.detail().empty() ? "-" : c.detail()});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunOutbound(Stub& stub, const std::string& exam, bool as_json) {
  rdg::v1::OutboundRequest req;
  req.set_exam_id(exam);
  rdg::v1::OutboundResponse resp;
  if (auto done = Call(stub, &Stub::GetOutbound, req, &resp, as_json)) return *done;
  if (resp.destinations().empty()) {
    std::cout << "no destinations configured (institutions { destinations { … } })\n";
    return 0;
  }
  auto when = [](bool has, const google::protobuf::Timestamp& t) {
    return has ? rdg::clients::LocalTime(t) : std::string("-");
  };
  std::vector<std::vector<std::string>> rows = {{"DESTINATION", "OF", "SYSTEM", "ADDRESS",
                                                 "PENDING", "SENT", "FAILED", "OLDEST PENDING",
                                                 "LAST SENT", "LAST ERROR"}};
  for (const auto& d : resp.destinations()) {
    rows.push_back({d.name(), d.institution().empty() ? "(not configured)" : d.institution(),
                    d.system().empty() ? "-" : d.system(), d.address().empty() ? "-" : d.address(),
                    std::to_string(d.pending()), std::to_string(d.sent()),
                    std::to_string(d.failed()),
                    when(d.has_oldest_pending_since(), d.oldest_pending_since()),
                    when(d.has_last_sent_at(), d.last_sent_at()),
                    d.last_error().empty() ? "-" : d.last_error()});
  }
  rdg::clients::PrintTable(rows);
  if (exam.empty()) return 0;
  std::cout << "\n";
  if (resp.jobs().empty()) {
    std::cout << "no pushes for exam " << exam << "\n";
    return 0;
  }
  rows = {{"JOB", "DESTINATION", "KIND", "REPORT", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "DONE",
           "DETAIL"}};
  for (const auto& j : resp.jobs()) {
    rows.push_back({std::to_string(j.job_id()), j.destination(), j.kind(), j.report_id(), j.state(),
                    std::to_string(j.attempts()),
                    when(j.has_next_attempt_at(), j.next_attempt_at()),
                    when(j.has_done_at(), j.done_at()), j.detail().empty() ? "-" : j.detail()});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunOutboundRetry(Stub& stub, const std::string& destination, bool as_json) {
  rdg::v1::RetryOutboundRequest req;
  req.set_destination(destination);
  rdg::v1::RetryOutboundResponse resp;
  if (auto done = Call(stub, &Stub::RetryOutbound, req, &resp, as_json)) return *done;
  std::cout << resp.requeued() << " failed job" << (resp.requeued() == 1 ? "" : "s")
            << " back in the queue of "
            << (destination.empty() ? std::string("every destination") : destination) << "\n";
  return 0;
}

const std::map<std::string, rdg::v1::TurnaroundGrouping>& Groupings() {
  static const auto* kGroupings = new std::map<std::string, rdg::v1::TurnaroundGrouping>{
      {"institution", rdg::v1::BY_ORIGIN_INSTITUTION},
      {"reviewer", rdg::v1::BY_REVIEWING_INSTITUTION},
      {"queue", rdg::v1::BY_QUEUE},
      {"modality", rdg::v1::BY_EXAM_TYPE},
      {"priority", rdg::v1::BY_PRIORITY},
      {"county", rdg::v1::BY_COUNTY}};
  return *kGroupings;
}

std::string StageName(rdg::v1::Stage stage) {
  switch (stage) {
    case rdg::v1::RECEIVED_TO_CLAIMED:
      return "received->claimed";
    case rdg::v1::RECEIVED_TO_FINAL:
      return "received->final";
    case rdg::v1::FINAL_TO_ACKNOWLEDGED:
      return "final->acknowledged";
    case rdg::v1::CRITICAL_ACKNOWLEDGEMENT:
      return "critical ack";
    default:
      return rdg::v1::Stage_Name(stage);
  }
}

std::string Percent(double share) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f %%", share * 100);
  return buf;
}

int RunTurnaround(Stub& stub, const std::string& since, const std::string& until,
                  const std::string& by, bool as_json) {
  rdg::v1::TurnaroundRequest req;
  if (!SetSince(since, req.mutable_since())) return kExitUsage;
  if (!until.empty() && !ParseWhen("--until", until, req.mutable_until())) return kExitUsage;
  if (!by.empty()) req.set_group_by(Groupings().at(by));
  rdg::v1::TurnaroundResponse resp;
  if (auto done = Call(stub, &Stub::GetTurnaround, req, &resp, as_json, 60)) return *done;
  if (resp.groups().empty()) {
    std::cout << "no stage completed in the window\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {by.empty() ? "" : "GROUP", "STAGE", "COUNT", "P50", "P90", "P99", "MAX", "WITHIN SLA"}};
  for (const auto& g : resp.groups()) {
    for (const auto& f : g.stages()) {
      rows.push_back({by.empty() ? "" : (g.name().empty() ? g.key() : g.name()),
                      StageName(f.stage()), std::to_string(f.count()), Human(f.p50()),
                      Human(f.p90()), Human(f.p99()), Human(f.max()),
                      f.with_target() > 0 ? Percent(f.within_sla_share()) : "no target"});
    }
  }
  if (by.empty()) {
    for (auto& r : rows) r.erase(r.begin());
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunBreaches(Stub& stub, bool open_only, const std::string& since, int limit, bool as_json) {
  rdg::v1::BreachesRequest req;
  req.set_open_only(open_only);
  req.set_limit(limit);
  if (!since.empty() && !SetSince(since, req.mutable_since())) return kExitUsage;
  rdg::v1::BreachesResponse resp;
  if (auto done = Call(stub, &Stub::ListBreaches, req, &resp, as_json)) return *done;
  if (resp.breaches().empty()) {
    std::cout << (open_only ? "no open SLA breaches\n" : "no SLA breaches recorded\n");
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"EXAM", "STAGE", "PRIORITY", "TYPE", "QUEUE", "FROM", "DUE", "OVERRUN", "STATUS"}};
  for (const auto& b : resp.breaches()) {
    rows.push_back({b.exam_id(), StageName(b.stage()), rdg::v1::Priority_Name(b.priority()),
                    b.exam_type(), b.queue_name(), b.origin_name(),
                    rdg::clients::LocalTime(b.due_at()), Human(b.overrun()),
                    b.open() ? "OPEN" : "closed"});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

void PrintBackup(const rdg::clients::BackupSummary& b, const std::string& dir, bool as_json) {
  if (as_json) {
    nlohmann::json out = {{"dir", dir},
                          {"index_bytes", b.index_bytes},
                          {"audit_seq", b.audit_seq},
                          {"objects", b.objects},
                          {"copied", b.copied},
                          {"copied_bytes", b.copied_bytes},
                          {"problems", b.problems}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  for (const std::string& p : b.problems) std::cout << p << "\n";
}

int RunBackup(Stub& stub, const std::string& dir, bool as_json) {
  absl::StatusOr<rdg::clients::BackupSummary> b = rdg::clients::PullBackup(stub, dir);
  if (!b.ok()) {
    std::cerr << "rdg-admin: backup into " << dir << " failed: " << b.status().message() << "\n";
    return kExitFailure;
  }
  PrintBackup(*b, dir, as_json);
  if (!as_json) {
    std::cout << "backup " << dir << ": index snapshot (" << b->index_bytes
              << " bytes, audit log to record " << b->audit_seq << "), " << b->objects
              << " stored objects (" << b->copied << " copied now, " << b->copied_bytes
              << " bytes; the rest were already there), each checked against its SHA-256\n";
  }
  return 0;
}

int RunBackupVerify(const std::string& dir, bool as_json) {
  absl::StatusOr<rdg::clients::BackupSummary> b = rdg::clients::VerifyBackup(dir);
  if (!b.ok()) {
    std::cerr << "rdg-admin: " << b.status().message() << "\n";
    return kExitFailure;
  }
  PrintBackup(*b, dir, as_json);
  if (!as_json) {
    std::cout << "backup " << dir << ": index intact (audit log to record " << b->audit_seq << "), "
              << b->objects << " stored objects, "
              << (b->problems.empty() ? "all match their SHA-256"
                                      : absl::StrCat(b->problems.size(), " problem(s)"))
              << "\n";
  }
  return b->problems.empty() ? 0 : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rdg-admin: turnaround times, queue backlogs, SLA breaches and the audit log of "
      "the Remote Diagnosis Gateway"};
  app.set_version_flag("--version", rdg::VersionLine("rdg-admin"));
  app.footer(
      "Certificates and revocation (README \"Issuing certificates\", \"Revocation\"):\n"
      "  issue: /usr/share/rdg/issue-certificate.sh CA_CERT CA_KEY GATEWAY_CONFIG INSTITUTION ROLE "
      "USER OUT\n"
      "  revoke: openssl ca -config ca.cnf -revoke USER.pem\n"
      "          openssl ca -config ca.cnf -gencrl -out crl.pem.new && mv crl.pem.new CRL_FILE\n"
      "  The gateway reads tls.crl_file within seconds of it changing (and on SIGHUP): the\n"
      "  certificate is refused at its next handshake and call.");
  app.require_subcommand(1);
  rdg::clients::ConnectionOptions conn;
  conn.AddTo(app);
  bool as_json = false;
  app.add_flag("--json", as_json, "machine-readable output");

  auto* tat = app.add_subcommand("tat",
                                 "turnaround per stage: count, p50/p90/p99/max, share "
                                 "within SLA, of the stages completed in the window");
  std::string tat_since = "24h", tat_until, by;
  tat->add_option("--since", tat_since,
                  "start of the window: a span ago (90m, 24h, 7d), an RFC "
                  "3339 time or a UTC date")
      ->capture_default_str();
  tat->add_option("--until", tat_until, "end of the window, as --since (default: now)");
  std::vector<std::string> grouping_names;
  for (const auto& [name, value] : Groupings()) grouping_names.push_back(name);
  tat->add_option("--by", by,
                  "group by origin institution, reviewing institution, queue, "
                  "modality (exam type), priority or county")
      ->check(CLI::IsMember(grouping_names));
  tat->add_flag("--json", as_json, "machine-readable output");

  auto* queues = app.add_subcommand("queues",
                                    "every reading queue: depth, being read, oldest "
                                    "waiting, overdue");
  queues->add_flag("--json", as_json, "machine-readable output");

  auto* breaches = app.add_subcommand("breaches", "SLA breaches, most recently detected first");
  bool open_only = false;
  std::string breach_since;
  int breach_limit = 1000;
  breaches->add_flag("--open", open_only,
                     "only stages still running past their target, most "
                     "overdue first");
  breaches->add_option("--since", breach_since,
                       "detected since then: a span ago (24h), a time "
                       "or a date");
  breaches->add_option("--limit", breach_limit, "at most this many")->capture_default_str();
  breaches->add_flag("--json", as_json, "machine-readable output");

  auto* audit = app.add_subcommand("audit", "the audit log, newest first");
  std::string exam, user, since;
  int limit = 100;
  audit->add_option("--exam", exam, "only this exam");
  audit->add_option("--user", user, "only this user");
  audit->add_option("--since", since, "only since then: a span ago (24h), a time or a date");
  audit->add_option("--limit", limit, "at most this many")->capture_default_str();
  audit->add_flag("--json", as_json, "machine-readable output");
  auto* verify = audit->add_subcommand(
      "verify",
      "recompute the audit log's hash chain and check the gateway's signed checkpoints against "
      "the platform CA (--ca); exit 1 naming every altered, inserted or missing record");
  int64_t verify_from = 1;
  verify->add_option("--from", verify_from, "start at this record (its predecessor is trusted)")
      ->capture_default_str();
  verify->add_flag("--json", as_json, "machine-readable output");

  auto* conflicts =
      app.add_subcommand("identity-conflicts",
                         "what RDG refused to link or merge because a patient's identity did "
                         "not agree (refused national IDs, shared IDs with other "
                         "demographics, objects of another patient), newest first");
  std::string conflict_since;
  int conflict_limit = 100;
  conflicts->add_option("--since", conflict_since,
                        "detected since then: a span ago (24h), a time "
                        "or a date");
  conflicts->add_option("--limit", conflict_limit, "at most this many")->capture_default_str();
  conflicts->add_flag("--json", as_json, "machine-readable output");
  auto* outbound = app.add_subcommand(
      "outbound",
      "the pushes to the institutions' own PACS and HIS: each destination's queue (pending, "
      "sent, refused for good) and, with --exam, that exam's jobs and their last outcome");
  std::string outbound_exam;
  outbound->add_option("--exam", outbound_exam, "also list this exam's jobs");
  outbound->add_flag("--json", as_json, "machine-readable output");
  auto* outbound_retry = outbound->add_subcommand(
      "retry",
      "put the jobs a destination refused for good back in its queue (fix the cause "
      "first: a refusal says why)");
  std::string retry_destination;
  outbound_retry->add_option("DESTINATION", retry_destination,
                             "the destination's name (default: every destination)");
  outbound_retry->add_flag("--json", as_json, "machine-readable output");
  auto* backup = app.add_subcommand(
      "backup",
      "pull an online backup into DIR: a consistent snapshot of the index and every stored "
      "object it references, each checked against its SHA-256; again into the same DIR copies "
      "only what is new (needs your name in the gateway's backup_users)");
  std::string backup_dir;
  bool backup_verify = false;
  backup->add_option("DIR", backup_dir, "the backup's folder (the data dir's layout)")->required();
  backup->add_flag("--verify", backup_verify,
                   "check the backup in DIR offline instead: the index's integrity and every "
                   "object against its SHA-256 (no gateway needed); exit 1 on any problem");
  backup->add_flag("--json", as_json, "machine-readable output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the reason
    return code == 0 ? 0 : kExitUsage;
  }
  // What a tool writes (reports, images, PDFs, exports) holds patient data: owner only.
  ::umask(077);
  if (*backup && backup_verify) return RunBackupVerify(backup_dir, as_json);
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::AdminService::NewStub(channel);
  if (*tat) return RunTurnaround(*stub, tat_since, tat_until, by, as_json);
  if (*queues) return RunQueues(*stub, as_json);
  if (*breaches) return RunBreaches(*stub, open_only, breach_since, breach_limit, as_json);
  if (*conflicts) return RunIdentityConflicts(*stub, conflict_since, conflict_limit, as_json);
  if (*verify) return RunAuditVerify(*stub, verify_from, conn.ca, as_json);
  if (*backup) return RunBackup(*stub, backup_dir, as_json);
  if (*outbound_retry) return RunOutboundRetry(*stub, retry_destination, as_json);
  if (*outbound) return RunOutbound(*stub, outbound_exam, as_json);
  return RunAudit(*stub, exam, user, since, limit, as_json);
}
