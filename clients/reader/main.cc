// rdg-reader: a county or city reader's command line — worklist, claims, fetch (with ECG
// tracings), priors and lab trends, signed reports; and `render` for a local ECG file.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clients/common/connection.h"
#include "clients/common/object_files.h"
#include "clients/common/output.h"
#include "clients/common/report_crypto.h"
#include "clients/reader/ecg_tracing.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/version.h"
#include "storage/formats/ecg_waveform.h"

namespace {

using nlohmann::json;
using rdg::v1::ReadingService;

constexpr int kExitRefused = 1;  // the gateway refused the request (not found, claimed, …)
constexpr int kExitFailure = 2;  // usage or connection failure

int Fail(const grpc::Status& s) {
  std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                 s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
             ? kExitFailure
             : kExitRefused;
}

void Deadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

struct WorklistFilter {
  std::vector<std::string> modalities;
  std::vector<std::string> priorities;
  std::vector<std::string> states;
  std::string patient;
  int limit = 100;
};

//! The origin institution as people know it (its configured name), else its id.
std::string Origin(const rdg::v1::Exam& e) {
  return rdg::clients::Cell(
      e.origin_institution_name().empty() ? e.origin_institution() : e.origin_institution_name(),
      32);
}

int RunWorklist(ReadingService::Stub& stub, const WorklistFilter& f, bool as_json) {
  rdg::v1::WorklistRequest req;
  for (const auto& m : f.modalities) req.add_modalities(m);
  for (const auto& p : f.priorities) {
    rdg::v1::Priority v = rdg::v1::PRIORITY_UNSPECIFIED;
    rdg::v1::Priority_Parse(p, &v);
    req.add_priorities(v);
  }
  for (const auto& s : f.states) {
    rdg::v1::ExamState v = rdg::v1::EXAM_STATE_UNSPECIFIED;
    rdg::v1::ExamState_Parse(s, &v);
    req.add_states(v);
  }
  req.set_patient(f.patient);
  rdg::v1::WorklistResponse all;
  do {
    req.set_page_size(std::min(f.limit - all.items_size(), 1000));
    rdg::v1::WorklistResponse page;
    grpc::ClientContext ctx;
    Deadline(ctx);
    if (auto s = stub.GetWorklist(&ctx, req, &page); !s.ok()) return Fail(s);
    for (auto& item : *page.mutable_items()) *all.add_items() = std::move(item);
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty() && all.items_size() < f.limit);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(all) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"EXAM", "DUE", "PRIORITY", "PATIENT", "SEX/AGE",
                                                 "TYPE", "DESCRIPTION", "FROM", "QUEUE", "STATE",
                                                 "CLAIMED BY", "INSTANCES", "ESCALATED (BY: WHY)"}};
  for (const auto& item : all.items()) {
    const auto& e = item.exam();
    const std::vector<std::string> patient = rdg::clients::PatientCells(e);
    rows.push_back({e.exam_id(), rdg::clients::LocalTime(item.sla_due_at()),
                    rdg::v1::Priority_Name(e.priority()) + (e.critical() ? " CRITICAL" : ""),
                    patient[0], patient[1], e.exam_type(), patient[2], Origin(e), e.queue(),
                    // A claim on a FINAL exam is one for an addendum (claim --amend).
                    rdg::v1::ExamState_Name(e.state()) +
                        (e.state() == rdg::v1::FINAL && item.has_claim() ? " (AMENDING)" : ""),
                    item.has_claim() ? item.claim().holder_user() : "",
                    std::to_string(e.instance_count()),
                    e.escalated_by().empty()
                        ? ""
                        : rdg::clients::Cell(e.escalated_by() + ": " + e.escalation_reason(), 60)});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

using ClaimCall = grpc::Status (ReadingService::Stub::*)(grpc::ClientContext*,
                                                         const rdg::v1::ClaimRequest&,
                                                         rdg::v1::Claim*);

int RunClaimCall(ReadingService::Stub& stub, ClaimCall call, const std::string& verb,
                 const std::string& exam_id, bool as_json, bool for_amendment = false,
                 const std::string& reason = "") {
  rdg::v1::ClaimRequest req;
  req.set_exam_id(exam_id);
  req.set_for_amendment(for_amendment);
  req.set_reason(reason);
  rdg::v1::Claim claim;
  grpc::ClientContext ctx;
  Deadline(ctx);
  if (auto s = (stub.*call)(&ctx, req, &claim); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(claim) << "\n";
  } else if (claim.has_expires_at()) {
    std::cout << verb << " " << exam_id << " until " << rdg::clients::LocalTime(claim.expires_at())
              << "\n";
  } else {
    std::cout << verb << " " << exam_id << "\n";
  }
  return 0;
}

int RunFetch(ReadingService::Stub& stub, const std::string& exam_id, const std::string& out_dir,
             bool as_json) {
  grpc::ClientContext ctx;
  rdg::v1::FetchExamRequest req;
  req.set_exam_id(exam_id);
  auto reader = stub.FetchExam(&ctx, req);
  auto result = rdg::clients::WriteObjectStream(*reader, out_dir);
  if (!result.status.ok()) return Fail(result.status);
  // ECG waveforms come with the tracing a cardiologist reads: BASE.ecg.svg and BASE.ecg.png.
  for (const auto& f : result.files) {
    if (!rdg::formats::IsEcgSopClass(f.object.sop_class_uid())) continue;
    const std::string base = f.path.substr(0, f.path.size() - 4) + ".ecg";
    auto written = rdg::clients::WriteEcgTracings(f.path, base);
    if (!written.ok()) {
      std::cerr << "warning: cannot render " << f.path << ": " << written.status().message()
                << "\n";
      continue;
    }
    result.rendered.insert(result.rendered.end(), written->begin(), written->end());
  }
  rdg::clients::PrintStreamResult(result, exam_id, out_dir, "fetched", as_json);
  return 0;
}

int RunRender(const std::string& file, const std::string& out, bool as_json) {
  if (auto s = rdg::clients::RenderEcgFile(file, out); !s.ok()) {
    std::cerr << "error: " << file << ": " << s.message() << "\n";
    return kExitRefused;
  }
  if (as_json) {
    std::cout << json({{"input", file}, {"output", out}}).dump(2) << "\n";
  } else {
    std::cout << "rendered " << out << "\n";
  }
  return 0;
}

struct ReportOptions {
  std::string findings;
  std::string impression;
  bool critical = false;
  bool final = false;
  std::string reason;     //!< addenda: why the report is amended
  std::string sign_key;   //!< default: --key
  std::string sign_cert;  //!< default: --cert
};

//! What a report needs from the gateway: the desk at which this reader reads the exam, and the
//! latest signed version's id (what an addendum supersedes; "" if none).
struct ReportContext {
  std::string desk;
  std::string latest_signed;
};

grpc::Status GetReportContext(ReadingService::Stub& stub, const std::string& exam_id,
                              ReportContext* out) {
  rdg::v1::GetReportsRequest req;
  req.set_exam_id(exam_id);
  rdg::v1::GetReportsResponse resp;
  grpc::ClientContext ctx;
  Deadline(ctx);
  grpc::Status s = stub.GetReports(&ctx, req, &resp);
  out->desk = resp.desk();
  for (const auto& v : resp.versions()) {
    if (v.content().status() != rdg::v1::PRELIMINARY_REPORT) out->latest_signed = v.report_id();
  }
  return s;
}

int RunReport(ReadingService::Stub& stub, const rdg::clients::ConnectionOptions& conn,
              const std::string& exam_id, ReportOptions o, bool addendum, bool as_json) {
  rdg::v1::SubmitReportRequest req;
  auto* c = req.mutable_content();
  std::string error;
  std::string institution, user;
  if (!rdg::clients::CertificateIdentity(conn.cert, &institution, &user, &error)) {
    std::cerr << "error: " << error << "\n";
    return kExitFailure;
  }
  c->set_exam_id(exam_id);
  c->set_findings(o.findings);
  c->set_impression(o.impression);
  c->set_critical(o.critical);
  c->set_reader_user(user);
  c->set_reader_institution(institution);
  c->mutable_signed_at()->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  c->set_status(addendum  ? rdg::v1::AMENDED_REPORT
                : o.final ? rdg::v1::FINAL_REPORT
                          : rdg::v1::PRELIMINARY_REPORT);
  ReportContext context;
  if (auto s = GetReportContext(stub, exam_id, &context); !s.ok()) return Fail(s);
  c->set_desk(context.desk);
  if (addendum) {
    c->set_amendment_reason(o.reason);
    c->set_supersedes_report_id(context.latest_signed);
    if (c->supersedes_report_id().empty()) {
      std::cerr << "error: exam " << exam_id << " has no signed report to amend\n";
      return kExitRefused;
    }
  }
  req.set_canonical_bytes(rdg::v1::CanonicalReportBytes(*c));
  if (addendum || o.final) {
    // The private key stays here: only the signature travels.
    if (!rdg::clients::SignReport(req.canonical_bytes(), o.sign_key.empty() ? conn.key : o.sign_key,
                                  o.sign_cert.empty() ? conn.cert : o.sign_cert,
                                  req.mutable_signature(), &error)) {
      std::cerr << "error: " << error << "\n";
      return kExitFailure;
    }
  }
  rdg::v1::ReportVersion accepted;
  grpc::ClientContext ctx;
  Deadline(ctx);
  if (auto s = stub.SubmitReport(&ctx, req, &accepted); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(accepted) << "\n";
  } else {
    std::cout << rdg::v1::ReportStatus_Name(accepted.content().status()) << " report "
              << accepted.report_id() << " (version " << accepted.version() << ") accepted for "
              << exam_id
              << (accepted.has_signature()
                      ? ", signed " + rdg::v1::SignatureFormat_Name(accepted.signature().format())
                      : std::string(", unsigned"))
              << (c->desk().empty() ? "" : " at desk " + c->desk()) << "\n";
  }
  return 0;
}

int RunReports(ReadingService::Stub& stub, const std::string& exam_id,
               const std::string& break_glass, bool as_json) {
  rdg::v1::GetReportsRequest req;
  req.set_exam_id(exam_id);
  req.set_break_glass_reason(break_glass);
  rdg::v1::GetReportsResponse resp;
  grpc::ClientContext ctx;
  Deadline(ctx);
  if (auto s = stub.GetReports(&ctx, req, &resp); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(resp) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"REPORT", "VERSION", "STATUS", "READER", "ACCEPTED", "SIGNATURE", "IMPRESSION"}};
  for (const auto& v : resp.versions()) {
    rows.push_back({v.report_id(), std::to_string(v.version()),
                    rdg::v1::ReportStatus_Name(v.content().status()), v.content().reader_user(),
                    rdg::clients::LocalTime(v.accepted_at()),
                    v.has_signature() ? rdg::v1::SignatureFormat_Name(v.signature().format()) : "-",
                    rdg::clients::Cell(v.content().impression(), 60)});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

int RunPriors(ReadingService::Stub& stub, const std::string& exam_id,
              const std::string& break_glass, bool as_json) {
  rdg::v1::PriorsRequest req;
  req.set_exam_id(exam_id);
  req.set_break_glass_reason(break_glass);
  rdg::v1::PriorsResponse resp;
  grpc::ClientContext ctx;
  Deadline(ctx);
  if (auto s = stub.GetPriors(&ctx, req, &resp); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(resp) << "\n";
    return 0;
  }
  if (resp.priors().empty()) {
    std::cout << "no prior exams of this patient on the platform\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"EXAM", "STUDY DATE", "PATIENT", "SEX/AGE", "TYPE", "DESCRIPTION", "FROM", "STATE"}};
    for (const auto& e : resp.priors()) {
      const std::vector<std::string> patient = rdg::clients::PatientCells(e);
      rows.push_back({e.exam_id(), e.study_date(), patient[0], patient[1], e.exam_type(),
                      patient[2], Origin(e), rdg::v1::ExamState_Name(e.state())});
    }
    rdg::clients::PrintTable(rows);
  }
  if (!resp.lab_results().empty()) {
    // A trend per test: the gateway orders by code, then observation time.
    std::cout << "\nlab results (this exam and earlier values of the same tests):\n";
    std::vector<std::vector<std::string>> rows = {
        {"TEST", "NAME", "OBSERVED", "VALUE", "UNITS", "RANGE", "FLAGS", "FROM", "EXAM"}};
    for (const auto& l : resp.lab_results()) {
      std::string flags;
      for (const auto& f : l.abnormal_flags()) flags += (flags.empty() ? "" : ",") + f;
      if (l.critical()) flags += flags.empty() ? "CRITICAL" : " CRITICAL";
      rows.push_back({l.code(), l.name(), rdg::clients::HumanDateTime(l.observed_at()), l.value(),
                      l.units(), l.reference_range(), flags, l.origin_institution(),
                      l.exam_id() == exam_id ? "(this exam)" : l.exam_id()});
    }
    rdg::clients::PrintTable(rows);
  }
  return 0;
}

int RunEscalate(ReadingService::Stub& stub, const std::string& exam_id, const std::string& reason,
                bool as_json) {
  rdg::v1::EscalateRequest req;
  req.set_exam_id(exam_id);
  req.set_reason(reason);
  rdg::v1::Exam exam;
  grpc::ClientContext ctx;
  Deadline(ctx);
  if (auto s = stub.EscalateExam(&ctx, req, &exam); !s.ok()) return Fail(s);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(exam) << "\n";
  } else {
    std::cout << "escalated " << exam_id << " to " << exam.queue() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rdg-reader: read exams of your institution's queues on the Remote Diagnosis Gateway"};
  app.set_version_flag("--version", rdg::VersionLine("rdg-reader"));
  app.require_subcommand(1);
  rdg::clients::ConnectionOptions conn;
  conn.AddTo(app);
  bool as_json = false;
  app.add_flag("--json", as_json, "machine-readable output");
  std::string exam_id, out_dir;
  auto add_exam = [&](CLI::App* cmd) {
    cmd->add_option("exam", exam_id, "exam id (see `rdg-reader worklist`)")->required();
    cmd->add_flag("--json", as_json, "machine-readable output");
  };

  auto* worklist = app.add_subcommand("worklist", "exams of your queues, most urgent first");
  WorklistFilter filter;
  worklist->add_option("--modality", filter.modalities, "only these exam types (CT, DX, ECG, …)");
  worklist->add_option("--priority", filter.priorities, "only these priorities")
      ->transform(CLI::IsMember({"STAT", "URGENT", "ROUTINE"}, CLI::ignore_case));
  worklist
      ->add_option("--state", filter.states,
                   "only these states (default ROUTED CLAIMED PRELIMINARY)")
      ->transform(CLI::IsMember({"ROUTED", "CLAIMED", "PRELIMINARY", "FINAL", "ESCALATED"},
                                CLI::ignore_case));
  worklist->add_option("--patient", filter.patient,
                       "only this patient: part of the name (张, 张三, ZHANG) or the patient ID");
  worklist->add_option("--limit", filter.limit, "at most this many")->capture_default_str();
  worklist->add_flag("--json", as_json, "machine-readable output");
  auto* claim = app.add_subcommand("claim", "take an exam (a lease you renew while working)");
  add_exam(claim);
  bool for_amendment = false;
  std::string amend_reason;
  auto* amend_flag =
      claim->add_flag("--amend", for_amendment,
                      "take a FINAL exam to write an addendum to another reader's report");
  claim
      ->add_option("--reason", amend_reason,
                   "why the report needs amending (with --amend; audited)")
      ->needs(amend_flag);
  auto* renew = app.add_subcommand("renew", "extend your lease on an exam");
  add_exam(renew);
  auto* release = app.add_subcommand("release", "give an exam back to its queue");
  add_exam(release);
  auto* fetch = app.add_subcommand("fetch", "download a claimed exam's objects");
  add_exam(fetch);
  fetch->add_option("--out", out_dir, "output folder")->required();
  ReportOptions report_options;
  auto add_report_options = [&](CLI::App* cmd) {
    cmd->add_option("--findings", report_options.findings, "findings (free text)");
    cmd->add_option("--impression", report_options.impression, "impression / conclusion")
        ->required();
    cmd->add_flag("--critical", report_options.critical,
                  "critical result: urgent delivery, acknowledgement deadline");
    cmd->add_option("--sign-key", report_options.sign_key,
                    "your signing key, PEM (default: --key)");
    cmd->add_option("--sign-cert", report_options.sign_cert,
                    "your signing certificate, PEM (default: --cert)");
  };
  auto* report =
      app.add_subcommand("report", "submit a report (PRELIMINARY, or signed FINAL with --final)");
  add_exam(report);
  add_report_options(report);
  report->add_flag("--final", report_options.final, "sign and submit the FINAL report");
  auto* addendum = app.add_subcommand(
      "addendum",
      "add a signed amendment to a final report: your own, or one you claimed with "
      "claim --amend");
  add_exam(addendum);
  add_report_options(addendum);
  addendum->add_option("--reason", report_options.reason, "why the report is amended (signed)")
      ->required();
  auto* reports = app.add_subcommand(
      "reports", "list the report versions of an exam you work on (claim, or your own report)");
  add_exam(reports);
  std::string reports_glass;
  reports->add_option("--break-glass", reports_glass,
                      "… of an exam you do not work on, saying why (audited, shown to the "
                      "administrators)");
  auto* priors = app.add_subcommand(
      "priors",
      "the patient's other exams on the platform: for the exam you have claimed (audited)");
  add_exam(priors);
  std::string break_glass;
  priors->add_option("--break-glass", break_glass,
                     "see the priors of an exam you have not claimed, saying why (audited, shown "
                     "to the administrators)");
  auto* escalate =
      app.add_subcommand("escalate", "send a claimed exam to the next level's consultation queue");
  add_exam(escalate);
  std::string reason;
  escalate->add_option("--reason", reason, "why a consultation is needed")->required();
  auto* render =
      app.add_subcommand("render", "draw a local ECG file as the 12-lead printout (no gateway)");
  std::string render_file, render_out;
  render->add_option("file", render_file, "a DICOM 12-lead or general ECG waveform file")
      ->required()
      ->check(CLI::ExistingFile);
  render->add_option("--out", render_out, "picture to write: NAME.svg or NAME.png")->required();
  render->add_flag("--json", as_json, "machine-readable output");
  // The isolated ECG renderer that `fetch` and `render` start (ecg_tracing.h); not for people.
  auto* ecg_worker = app.add_subcommand(rdg::clients::kEcgWorkerCommand)->group("");
  std::string worker_in;
  std::vector<std::string> worker_out;
  ecg_worker->add_option("file", worker_in)->required();
  ecg_worker->add_option("out", worker_out)->required();
  CLI11_PARSE(app, argc, argv);
  // What a tool writes (reports, images, PDFs, exports) holds patient data: owner only.
  ::umask(077);
  if (*ecg_worker) return rdg::clients::RunEcgWorker(worker_in, worker_out);
  if (*render) return RunRender(render_file, render_out, as_json);

  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = ReadingService::NewStub(channel);
  if (*worklist) return RunWorklist(*stub, filter, as_json);
  if (*claim) {
    return RunClaimCall(*stub, &ReadingService::Stub::ClaimExam,
                        for_amendment ? "claimed for amendment" : "claimed", exam_id, as_json,
                        for_amendment, amend_reason);
  }
  if (*renew)
    return RunClaimCall(*stub, &ReadingService::Stub::RenewClaim, "renewed", exam_id, as_json);
  if (*release)
    return RunClaimCall(*stub, &ReadingService::Stub::ReleaseClaim, "released", exam_id, as_json);
  if (*report) return RunReport(*stub, conn, exam_id, report_options, false, as_json);
  if (*addendum) return RunReport(*stub, conn, exam_id, report_options, true, as_json);
  if (*reports) return RunReports(*stub, exam_id, reports_glass, as_json);
  if (*priors) return RunPriors(*stub, exam_id, break_glass, as_json);
  if (*escalate) return RunEscalate(*stub, exam_id, reason, as_json);
  return RunFetch(*stub, exam_id, out_dir, as_json);
}
