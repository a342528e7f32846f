// rdg-clinic: a clinic's command line — upload exams, list and download them, receive, verify
// and acknowledge their signed reports.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/agent/agent.h"
#include "clients/clinic/report_folder.h"
#include "clients/clinic/uploader.h"
#include "clients/common/connection.h"
#include "clients/common/object_files.h"
#include "clients/common/output.h"
#include "clients/common/report_crypto.h"
#include "clients/common/tls_probe.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "rdg/v1/ingest.grpc.pb.h"
#include "storage/base/version.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using rdg::clients::HumanBytes;

constexpr int kExitRejected = 1;  // some input was refused: fix it and run again
constexpr int kExitFailure = 2;   // usage, connection or gateway failure

//! What one `upload` run stored, by exam, in the order exams first appeared.
struct UploadSummary {
  struct Exam {
    int instances = 0;
    int duplicates = 0;
    int64_t bytes = 0;
    int exam_total = 0;
  };
  std::vector<std::string> order;
  std::map<std::string, Exam> exams;
  int failed = 0;    //!< transient: the same command again resumes them
  int rejected = 0;  //!< refused for good
  int64_t bytes_sent = 0;
  double seconds = 0;
};

UploadSummary Summarize(const std::vector<rdg::clients::FileResult>& results, double seconds) {
  UploadSummary s;
  s.seconds = seconds;
  for (const auto& r : results) {
    s.bytes_sent += r.bytes_sent;
    if (!r.ok) {
      ++(r.code == grpc::StatusCode::UNAVAILABLE || r.code == grpc::StatusCode::DEADLINE_EXCEEDED ||
                 r.code == grpc::StatusCode::UNAUTHENTICATED  // a refused certificate
             ? s.failed
             : s.rejected);
      continue;
    }
    auto [it, fresh] = s.exams.try_emplace(r.committed.exam_id());
    if (fresh) s.order.push_back(r.committed.exam_id());
    it->second.instances++;
    it->second.duplicates += r.committed.duplicate() ? 1 : 0;
    it->second.bytes += r.size;
    it->second.exam_total = std::max(it->second.exam_total, r.committed.exam_instance_count());
  }
  return s;
}

void PrintUploadJson(const UploadSummary& summary,
                     const std::vector<rdg::clients::FileResult>& results,
                     const rdg::clients::Discovery& discovery) {
  const auto& order = summary.order;
  const auto& exams = summary.exams;
  const double seconds = summary.seconds;
  const int64_t bytes_sent = summary.bytes_sent;
  json out = {{"exams", json::array()},
              {"files", json::array()},
              {"skipped", discovery.skipped},
              {"seconds", seconds},
              {"bytes_sent", bytes_sent}};
  for (const auto& id : order) {
    const auto& e = exams.at(id);
    out["exams"].push_back({{"exam_id", id},
                            {"instances", e.instances},
                            {"duplicates", e.duplicates},
                            {"bytes", e.bytes},
                            {"exam_instance_count", e.exam_total}});
  }
  for (const auto& r : results) {
    json f = {{"path", r.path},
              {"label", r.label},
              {"kind", rdg::v1::ObjectKind_Name(r.kind)},
              {"size", r.size},
              {"ok", r.ok},
              {"attempts", r.attempts},
              {"bytes_sent", r.bytes_sent},
              {"resumed_from", r.resumed_from}};
    if (r.hl7_ack) {
      f["hl7_ack_code"] = r.hl7_ack->code();
      f["hl7_ack"] = r.hl7_ack->message();
      if (!r.hl7_ack->reason().empty()) f["hl7_ack_reason"] = r.hl7_ack->reason();
    }
    if (r.ok) {
      f["exam_id"] = r.committed.exam_id();
      f["sop_instance_uid"] = r.committed.sop_instance_uid();
      f["duplicate"] = r.committed.duplicate();
    } else {
      f["code"] = rdg::clients::StatusCodeName(r.code);
      if (r.busy) f["gateway_busy"] = true;
      f["error"] = r.message;
    }
    out["files"].push_back(std::move(f));
  }
  std::cout << out.dump(2) << "\n";
}

void PrintUploadText(const UploadSummary& summary,
                     const std::vector<rdg::clients::FileResult>& results,
                     const rdg::clients::Discovery& discovery) {
  const auto& order = summary.order;
  const auto& exams = summary.exams;
  const int failed = summary.failed, rejected = summary.rejected;
  const double seconds = summary.seconds;
  const int64_t bytes_sent = summary.bytes_sent;
  for (const auto& id : order) {
    const auto& e = exams.at(id);
    std::cout << "exam " << id << "  " << e.instances << " instances"
              << (e.duplicates ? " (" + std::to_string(e.duplicates) + " already stored)" : "")
              << "  " << HumanBytes(double(e.bytes)) << "  (exam now holds " << e.exam_total
              << ")\n";
  }
  for (const auto& r : results) {
    if (!r.hl7_ack) continue;  // lab systems think in ACK codes: one line per message
    std::cout << "lab message " << r.label << ": ACK " << r.hl7_ack->code()
              << (r.ok ? "  exam " + r.committed.exam_id() : "")
              << (r.ok && r.committed.duplicate() ? " (already stored)" : "")
              << (r.hl7_ack->reason().empty() ? "" : "  " + r.hl7_ack->reason()) << "\n";
  }
  for (const auto& r : results) {
    if (r.ok) continue;
    const bool transient =
        r.code == grpc::StatusCode::UNAVAILABLE || r.code == grpc::StatusCode::DEADLINE_EXCEEDED;
    const std::string why = r.busy
                                ? "the gateway is busy (" + r.message + ")"
                                : rdg::clients::DescribeRpcError(grpc::Status(r.code, r.message));
    if (r.code == grpc::StatusCode::UNAUTHENTICATED) {  // the certificate, not the file
      std::cout << "not uploaded " << r.label << ": " << r.message << "\n";
      continue;
    }
    std::cout << (transient ? "not uploaded " : "rejected ") << r.label << ": "
              << (transient ? why + "; run the same command again to resume" : r.message) << "\n";
  }
  if (!discovery.skipped.empty()) {
    std::cout << "skipped " << discovery.skipped.size()
              << " files in folders that are not DICOM or HL7 (e.g. " << discovery.skipped.front()
              << ")\n";
  }
  std::cout << results.size() - failed - rejected << " of " << results.size() << " objects stored, "
            << HumanBytes(double(bytes_sent)) << " sent in " << seconds << " s\n";
}

int RunUpload(const rdg::clients::ConnectionOptions& conn, const std::vector<std::string>& paths,
              const rdg::clients::UploadOptions& options, bool as_json) {
  auto discovery = rdg::clients::DiscoverFiles(paths);
  for (const auto& m : discovery.missing)
    std::cerr << "error: no such file or folder: " << m << "\n";
  if (!discovery.missing.empty()) return kExitFailure;
  const auto items = rdg::clients::ItemsFromFiles(discovery.files);
  if (items.empty()) {  // e.g. a folder of JPEG exports: nothing was stored, and that is a failure
    std::cerr << "error: nothing to upload: no DICOM or HL7 file found";
    if (!discovery.skipped.empty()) {
      std::cerr << " (" << discovery.skipped.size() << " other files skipped, e.g. "
                << discovery.skipped.front() << "; export the study from the modality as DICOM)";
    }
    std::cerr << "\n";
    return kExitRejected;
  }
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  int64_t total_bytes = 0;
  for (const auto& f : discovery.files) {
    std::error_code ec;
    total_bytes += static_cast<int64_t>(fs::file_size(f, ec));
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<rdg::clients::FileResult> results;
  {
    rdg::clients::Progress progress("uploading", static_cast<int64_t>(items.size()), total_bytes);
    results = rdg::clients::UploadFiles(channel, items, options, &progress);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const UploadSummary summary = Summarize(results, seconds);
  if (as_json) {
    PrintUploadJson(summary, results, discovery);
  } else {
    PrintUploadText(summary, results, discovery);
  }
  if (summary.failed > 0) return kExitFailure;
  return summary.rejected > 0 ? kExitRejected : 0;
}

int RunExams(const rdg::clients::ConnectionOptions& conn, int limit, bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::ExamService::NewStub(channel);
  rdg::v1::ListExamsResponse all;
  std::string token;
  do {
    rdg::v1::ListExamsRequest req;
    req.set_page_size(std::min(limit - all.exams_size(), 1000));
    req.set_page_token(token);
    rdg::v1::ListExamsResponse page;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub->ListExams(&ctx, req, &page);
    if (!s.ok()) {
      std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
      return kExitFailure;
    }
    for (auto& e : *page.mutable_exams()) *all.add_exams() = std::move(e);
    token = page.next_page_token();
  } while (!token.empty() && all.exams_size() < limit);
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(all) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"EXAM", "RECEIVED", "PATIENT", "SEX/AGE",
                                                 "PATIENT ID", "TYPE", "DESCRIPTION", "PRIORITY",
                                                 "STATE", "INSTANCES", "SIZE"}};
  for (const auto& e : all.exams()) {
    const std::vector<std::string> patient = rdg::clients::PatientCells(e);
    rows.push_back({e.exam_id(), rdg::clients::LocalTime(e.received_at()), patient[0], patient[1],
                    rdg::clients::Cell(e.patient().patient_id(), 20), e.exam_type(), patient[2],
                    rdg::v1::Priority_Name(e.priority()) + (e.critical() ? " CRITICAL" : ""),
                    rdg::v1::ExamState_Name(e.state()), std::to_string(e.instance_count()),
                    HumanBytes(double(e.total_bytes()))});
  }
  rdg::clients::PrintTable(rows);
  return 0;
}

//! One exam with every stored object (GetExam pages them) and its history.
int RunExam(const rdg::clients::ConnectionOptions& conn, const std::string& exam_id, bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::ExamService::NewStub(channel);
  rdg::v1::GetExamResponse all;
  std::string token;
  do {
    rdg::v1::GetExamRequest req;
    req.set_exam_id(exam_id);
    req.set_page_token(token);
    rdg::v1::GetExamResponse page;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub->GetExam(&ctx, req, &page);
    if (!s.ok()) {
      std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
      return s.error_code() == grpc::StatusCode::NOT_FOUND ||
                     s.error_code() == grpc::StatusCode::PERMISSION_DENIED
                 ? kExitRejected
                 : kExitFailure;
    }
    if (token.empty()) {
      *all.mutable_exam() = page.exam();
      *all.mutable_events() = page.events();
    }
    for (auto& o : *page.mutable_objects()) *all.add_objects() = std::move(o);
    token = page.next_page_token();
  } while (!token.empty());
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(all) << "\n";
    return 0;
  }
  const auto& e = all.exam();
  const auto patient = rdg::clients::PatientCells(e);
  std::cout << "exam " << e.exam_id() << "  " << e.exam_type() << "  "
            << rdg::v1::ExamState_Name(e.state()) << "  " << rdg::v1::Priority_Name(e.priority())
            << "  study " << e.study_instance_uid() << "\n"
            << "patient " << patient[0] << "  " << patient[1] << "  ID "
            << rdg::clients::Cell(e.patient().patient_id(), 64)
            << (patient[2].empty() ? "" : "  " + patient[2]) << "\n";
  for (const auto& o : all.objects()) {  // how the object's text was read, when not as declared
    if (!o.text_notes().empty()) {
      std::cout << "note: " << o.sop_instance_uid() << ": " << o.text_notes() << "\n";
    }
  }
  std::cout << "\n";
  std::vector<std::vector<std::string>> objects = {
      {"SERIES", "INSTANCE", "MODALITY", "SOP INSTANCE UID", "SIZE", "RECEIVED"}};
  for (const auto& o : all.objects()) {
    objects.push_back({o.series_instance_uid(), std::to_string(o.instance_number()), o.modality(),
                       o.sop_instance_uid(), HumanBytes(double(o.size())),
                       rdg::clients::LocalTime(o.received_at())});
  }
  rdg::clients::PrintTable(objects);
  std::cout << "\n";
  std::vector<std::vector<std::string>> events = {{"AT", "STATE", "BY", "DETAIL"}};
  for (const auto& ev : all.events()) {
    events.push_back({rdg::clients::LocalTime(ev.at()), rdg::v1::ExamState_Name(ev.state()),
                      ev.actor(), ev.detail()});
  }
  rdg::clients::PrintTable(events);
  return 0;
}

//! The institution's unfinished uploads; with `abort` ("all" or a session id) discards them.
int RunUploads(const rdg::clients::ConnectionOptions& conn, const std::string& abort,
               bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::IngestService::NewStub(channel);
  std::vector<rdg::v1::UploadSummary> uploads;
  if (abort.empty() || abort == "all") {
    std::string token;
    do {
      rdg::v1::ListUploadsRequest req;
      req.set_page_size(1000);
      req.set_page_token(token);
      rdg::v1::ListUploadsResponse page;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      grpc::Status s = stub->ListUploads(&ctx, req, &page);
      if (!s.ok()) {
        std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
        return kExitFailure;
      }
      for (auto& u : *page.mutable_uploads()) uploads.push_back(std::move(u));
      token = page.next_page_token();
    } while (!token.empty());
  }
  if (!abort.empty()) {
    std::vector<std::string> ids;
    if (abort == "all") {
      for (const auto& u : uploads) ids.push_back(u.status().session_id());
    } else {
      ids.push_back(abort);
    }
    int failed = 0;
    json out = json::array();
    for (const auto& id : ids) {
      rdg::v1::GetUploadRequest req;
      req.set_session_id(id);
      rdg::v1::UploadStatus status;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      grpc::Status s = stub->AbortUpload(&ctx, req, &status);
      if (!s.ok()) {
        ++failed;
        std::cerr << "error: upload " << id << ": " << rdg::clients::DescribeRpcError(s) << "\n";
        continue;
      }
      if (as_json) {
        out.push_back({{"session_id", id}, {"state", "ABORTED"}});
      } else {
        std::cout << "aborted upload " << id << "\n";
      }
    }
    if (as_json) std::cout << out.dump() << "\n";
    if (!as_json && ids.empty()) std::cout << "no unfinished uploads\n";
    return failed > 0 ? kExitRejected : 0;
  }
  if (as_json) {
    rdg::v1::ListUploadsResponse all;
    for (auto& u : uploads) *all.add_uploads() = std::move(u);
    std::cout << rdg::clients::ProtoToJson(all) << "\n";
    return 0;
  }
  if (uploads.empty()) {
    std::cout << "no unfinished uploads\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"UPLOAD", "KIND", "RECEIVED", "SIZE", "LAST BYTES",
                                                 "EXPIRES", "IN USE", "BY", "CLIENT REF"}};
  for (const auto& u : uploads) {
    const auto& st = u.status();
    rows.push_back({st.session_id(), rdg::v1::ObjectKind_Name(u.kind()),
                    HumanBytes(double(st.committed_offset())), HumanBytes(double(st.size())),
                    rdg::clients::LocalTime(u.updated_at()),
                    rdg::clients::LocalTime(st.expires_at()), st.in_use() ? "yes" : "no", u.user(),
                    u.client_ref()});
  }
  rdg::clients::PrintTable(rows);
  std::cout << uploads.size()
            << " unfinished uploads; `rdg-clinic uploads --abort ID` (or all) "
               "discards them\n";
  return 0;
}

int RunDownload(const rdg::clients::ConnectionOptions& conn, const std::string& exam_id,
                const std::string& out_dir, bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::ExamService::NewStub(channel);
  grpc::ClientContext ctx;
  rdg::v1::DownloadExamRequest req;
  req.set_exam_id(exam_id);
  auto reader = stub->DownloadExam(&ctx, req);
  auto result = rdg::clients::WriteObjectStream(*reader, out_dir);
  if (!result.status.ok()) {
    std::cerr << "error: " << rdg::clients::DescribeRpcError(result.status) << "\n";
    return result.status.error_code() == grpc::StatusCode::NOT_FOUND ? kExitRejected : kExitFailure;
  }
  rdg::clients::PrintStreamResult(result, exam_id, out_dir, "downloaded", as_json);
  return 0;
}

void PrintDelivered(const rdg::v1::DeliveredReport& d, bool as_json) {
  if (as_json) {
    std::cout << rdg::clients::ProtoToJson(d) << std::endl;  // one JSON object per line
    return;
  }
  const auto& c = d.report().content();
  const std::string patient = rdg::clients::PatientCells(d.exam())[0];
  std::cout << d.report().report_id() << "  exam " << c.exam_id() << "  "
            << (patient.empty() ? "" : patient + "  ") << rdg::v1::ReportStatus_Name(c.status())
            << " v" << d.report().version() << "  by " << c.reader_user() << " ("
            << (d.reader_institution_name().empty() ? c.reader_institution()
                                                    : d.reader_institution_name())
            << ")";
  if (d.urgent()) {
    std::cout << "  CRITICAL RESULT: acknowledge by "
              << rdg::clients::LocalTime(d.acknowledge_by());
  }
  if (d.acknowledged()) std::cout << "  acknowledged";
  std::cout << "  cursor " << d.cursor() << std::endl;
}

//! Polls the feed from `cursor` to its end, calling `each` for every report.
grpc::Status PollAll(rdg::v1::DeliveryService::Stub& stub, std::string cursor,
                     const std::function<void(const rdg::v1::DeliveredReport&)>& each) {
  for (;;) {
    rdg::v1::WatchReportsRequest req;
    req.set_cursor(cursor);
    rdg::v1::PollReportsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (grpc::Status s = stub.PollReports(&ctx, req, &resp); !s.ok()) return s;
    for (const auto& d : resp.reports()) each(d);
    if (resp.reports().empty()) return grpc::Status::OK;
    cursor = resp.next_cursor();
  }
}

//! Every report of the institution not yet acknowledged, critical ones first by deadline: what
//! a clinic's screen shows until someone confirms receipt (`rdg-clinic ack`).
int RunUnacknowledged(const rdg::clients::ConnectionOptions& conn, bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::DeliveryService::NewStub(channel);
  // The latest version of each exam's report (an addendum supersedes what came before it, and
  // `ack EXAM` acknowledges the latest), from the empty cursor: the oldest unacknowledged on.
  std::map<std::string, rdg::v1::DeliveredReport> latest;
  if (grpc::Status s = PollAll(*stub, "",
                               [&](const rdg::v1::DeliveredReport& d) {
                                 auto [it, added] =
                                     latest.try_emplace(d.report().content().exam_id(), d);
                                 if (!added && d.report().version() > it->second.report().version())
                                   it->second = d;
                               });
      !s.ok()) {
    std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
    return kExitFailure;
  }
  std::vector<rdg::v1::DeliveredReport> pending;
  for (auto& [exam, d] : latest) {
    if (!d.acknowledged()) pending.push_back(std::move(d));
  }
  std::stable_sort(pending.begin(), pending.end(), [](const auto& a, const auto& b) {
    if (a.urgent() != b.urgent()) return a.urgent();
    return a.acknowledge_by().seconds() < b.acknowledge_by().seconds();
  });
  if (as_json) {
    for (const auto& d : pending) std::cout << rdg::clients::ProtoToJson(d) << std::endl;
    return 0;
  }
  if (pending.empty()) {
    std::cout << "no report waits for acknowledgement\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"EXAM", "PATIENT", "SEX/AGE", "REPORT", "CRITICAL", "ACKNOWLEDGE BY", "READER"}};
  for (const auto& d : pending) {
    const auto& c = d.report().content();
    const auto patient = rdg::clients::PatientCells(d.exam());
    rows.push_back(
        {c.exam_id(), patient[0], patient[1],
         absl::StrCat(rdg::v1::ReportStatus_Name(c.status()), " v", d.report().version()),
         d.urgent() ? "CRITICAL" : "",
         d.has_acknowledge_by() ? rdg::clients::LocalTime(d.acknowledge_by()) : "-",
         absl::StrCat(c.reader_user(), " · ",
                      d.reader_institution_name().empty() ? c.reader_institution()
                                                          : d.reader_institution_name())});
  }
  rdg::clients::PrintTable(rows);
  std::cout << "print one: rdg-clinic report EXAM --out DIR (writes DIR/report.pdf); confirm "
               "receipt: rdg-clinic ack EXAM\n";
  return 0;
}

//! Polls once, or with `watch` streams until `max` reports arrived (0: forever), reconnecting
//! from the last cursor whenever the stream breaks, so that nothing is missed.
int RunReports(const rdg::clients::ConnectionOptions& conn, std::string cursor, bool watch, int max,
               bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::DeliveryService::NewStub(channel);
  if (!watch) {
    grpc::Status s = PollAll(
        *stub, cursor, [&](const rdg::v1::DeliveredReport& d) { PrintDelivered(d, as_json); });
    if (!s.ok()) {
      std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
      return kExitFailure;
    }
    return 0;
  }
  int received = 0;
  auto backoff = std::chrono::milliseconds(200);
  for (;;) {
    rdg::v1::WatchReportsRequest req;
    req.set_cursor(cursor);
    grpc::ClientContext ctx;
    auto reader = stub->WatchReports(&ctx, req);
    rdg::v1::DeliveredReport d;
    while (reader->Read(&d)) {
      PrintDelivered(d, as_json);
      cursor = d.cursor();
      backoff = std::chrono::milliseconds(200);
      if (max > 0 && ++received >= max) {
        ctx.TryCancel();
        reader->Finish().ok();
        return 0;
      }
    }
    grpc::Status s = reader->Finish();
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::CANCELLED) {
      std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
      return kExitFailure;
    }
    std::cerr << "watch interrupted (" << rdg::clients::DescribeRpcError(s)
              << "); resuming from cursor " << (cursor.empty() ? "start" : cursor) << "\n";
    std::this_thread::sleep_for(backoff);  // reconnect backoff
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

grpc::Status GetLatestReport(rdg::v1::DeliveryService::Stub& stub, const std::string& exam_id,
                             rdg::v1::DeliveredReport* out) {
  rdg::v1::GetReportRequest req;
  req.set_exam_id(exam_id);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return stub.GetReport(&ctx, req, out);
}

//! Writes the report as signed (canonical text, signature, signer certificate) and verifies it.
//! The institution (certificate O) of the clinic's own certificate, or "" when none is set.
std::string OwnInstitution(const std::string& cert_path) {
  std::string institution, user, ignored;
  if (cert_path.empty() ||
      !rdg::clients::CertificateIdentity(cert_path, &institution, &user, &ignored)) {
    return "";
  }
  return institution;
}

int RunReport(const rdg::clients::ConnectionOptions& conn, const std::string& exam_id,
              const std::string& out_dir, const std::string& verify_ca, bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::DeliveryService::NewStub(channel);
  rdg::v1::DeliveredReport d;
  if (auto s = GetLatestReport(*stub, exam_id, &d); !s.ok()) {
    std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
    return s.error_code() == grpc::StatusCode::NOT_FOUND ? kExitRejected : kExitFailure;
  }
  const auto& r = d.report();
  rdg::clients::ReportFolder folder;
  std::string error;
  const std::string ca = verify_ca.empty() ? conn.ca : verify_ca;
  // Times on the printout in the local zone (TZ), as everything else this tool prints. The
  // report must be the one asked for: its signed text names this exam.
  if (!rdg::clients::WriteReportFolder(d, out_dir, ca, exam_id, OwnInstitution(conn.cert),
                                       absl::LocalTimeZone(), &folder, &error)) {
    std::cerr << "error: " << error << "\n";
    return kExitFailure;
  }
  const bool verified = folder.verified;
  if (!folder.pdf_error.empty()) {
    std::cerr << "warning: no report.pdf: " << folder.pdf_error << "\n";
  }
  if (as_json) {
    json out = {{"report_id", r.report_id()},
                {"exam_id", exam_id},
                {"text", folder.text},
                {"signature", folder.signature},
                {"signer_certificate", folder.certificate},
                {"receipt", folder.receipt},
                {"receipt_signature", folder.receipt_signature},
                {"verified", verified},
                {"detail", folder.detail},
                {"critical", d.urgent()},
                {"pdf", folder.pdf}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << r.canonical_bytes() << "\n"
              << "written: " << folder.text << ", " << folder.signature << ", "
              << folder.certificate << ", " << folder.receipt << ", " << folder.receipt_signature
              << "\n"
              << "signature " << (verified ? "VERIFIES: " : "DOES NOT VERIFY: ") << folder.detail
              << "\n";
    if (!folder.pdf.empty()) std::cout << "printable report: " << folder.pdf << "\n";
    std::cout << rdg::clients::OpensslCommands(folder, ca);
  }
  return verified ? 0 : kExitRejected;
}

//! `verify DIR`: a saved report folder checked again, offline, with the platform CA alone.
int RunVerify(const std::string& dir, const std::string& exam_id, const std::string& origin,
              const std::string& ca, bool as_json) {
  if (ca.empty()) {
    std::cerr << "error: name the platform CA certificate (--verify-ca or RDG_CA)\n";
    return kExitFailure;
  }
  rdg::clients::ReportFolder folder;
  std::string detail;
  const bool verified =
      rdg::clients::VerifyReportFolder(dir, ca, exam_id, origin, &folder, &detail);
  if (as_json) {
    std::cout << json{{"folder", dir},
                      {"exam_id", folder.exam_id},
                      {"origin_institution", folder.origin_institution},
                      {"verified", verified},
                      {"detail", detail}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << dir << " (exam " << (folder.exam_id.empty() ? "?" : folder.exam_id)
              << "): " << (verified ? "VERIFIES: " : "DOES NOT VERIFY: ") << detail << "\n"
              << rdg::clients::OpensslCommands(folder, ca);
  }
  return verified ? 0 : kExitRejected;
}

int RunAck(const rdg::clients::ConnectionOptions& conn, const std::string& exam_id, bool as_json) {
  auto channel = conn.Connect();
  if (!channel) return kExitFailure;
  auto stub = rdg::v1::DeliveryService::NewStub(channel);
  rdg::v1::DeliveredReport d;
  grpc::Status s = GetLatestReport(*stub, exam_id, &d);
  rdg::v1::AcknowledgeResponse ack;
  if (s.ok()) {
    rdg::v1::AcknowledgeRequest req;
    req.set_report_id(d.report().report_id());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    s = stub->AcknowledgeReport(&ctx, req, &ack);
  }
  if (!s.ok()) {
    std::cerr << "error: " << rdg::clients::DescribeRpcError(s) << "\n";
    return s.error_code() == grpc::StatusCode::NOT_FOUND ? kExitRejected : kExitFailure;
  }
  if (as_json) {
    std::cout << json({{"report_id", d.report().report_id()},
                       {"exam_id", exam_id},
                       {"acknowledged_at", rdg::clients::LocalTime(ack.acknowledged_at())}})
                     .dump(2)
              << "\n";
  } else {
    std::cout << "acknowledged report " << d.report().report_id() << " of exam " << exam_id
              << " at " << rdg::clients::LocalTime(ack.acknowledged_at()) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rdg-clinic: upload exams to the Remote Diagnosis Gateway and get them back"};
  app.set_version_flag("--version", rdg::VersionLine("rdg-clinic"));
  app.require_subcommand(1);
  rdg::clients::ConnectionOptions conn;
  conn.AddTo(app);
  bool as_json = false;
  app.add_flag("--json", as_json, "machine-readable output");

  auto* upload = app.add_subcommand(
      "upload", "upload DICOM files, HL7 lab message files (.hl7) and folders (resumable)");
  std::vector<std::string> paths;
  rdg::clients::UploadOptions options;
  std::string priority = "ROUTINE";
  double max_rate_mb = 0;
  upload->add_option("paths", paths, "files and folders")->required();
  upload->add_option("--parallel", options.parallel, "files in flight at once")
      ->capture_default_str();
  upload->add_option("--priority", priority, "STAT, URGENT or ROUTINE")
      ->transform(CLI::IsMember({"STAT", "URGENT", "ROUTINE"}, CLI::ignore_case))
      ->capture_default_str();
  upload->add_option("--max-rate", max_rate_mb, "cap the upload rate, MB/s (0: no cap)");
  upload
      ->add_option("--attempts", options.max_attempts,
                   "attempts a file, when the gateway is busy or unreachable")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  upload->add_flag("--json", as_json, "machine-readable output");

  auto* exams = app.add_subcommand("exams", "list your institution's exams, newest first");
  int limit = 100;
  exams->add_option("--limit", limit, "at most this many")->capture_default_str();
  exams->add_flag("--json", as_json, "machine-readable output");

  std::string exam_id, out_dir;
  auto* exam = app.add_subcommand("exam", "one exam: its stored objects and its history");
  exam->add_option("exam", exam_id, "exam id (see `rdg-clinic exams`)")->required();
  exam->add_flag("--json", as_json, "machine-readable output");

  auto* uploads = app.add_subcommand(
      "uploads", "your institution's unfinished uploads (kept for resume), and aborting them");
  std::string abort_upload;
  uploads->add_option("--abort", abort_upload, "discard this upload (session id), or `all`");
  uploads->add_flag("--json", as_json, "machine-readable output");

  auto* download = app.add_subcommand("download", "write an exam's stored instances to a folder");
  download->add_option("exam", exam_id, "exam id (see `rdg-clinic exams`)")->required();
  download->add_option("--out", out_dir, "output folder")->required();
  download->add_flag("--json", as_json, "machine-readable output");

  auto* reports = app.add_subcommand("reports", "reports delivered to your institution");
  bool watch = false;
  std::string cursor;
  int max_reports = 0;
  reports->add_flag("--watch", watch, "keep watching (resumes from its cursor after a break)");
  reports->add_option("--cursor", cursor, "start after this cursor (from an earlier run)");
  reports->add_option("--max", max_reports, "with --watch: stop after this many reports");
  reports->add_flag("--json", as_json, "machine-readable output (one JSON object per line)");
  bool unacknowledged = false;
  reports
      ->add_flag("--unacknowledged", unacknowledged,
                 "every report not yet acknowledged, critical results first")
      ->excludes("--watch")
      ->excludes("--cursor");
  auto* report =
      app.add_subcommand("report", "write an exam's signed report to a folder and verify it");
  report->add_option("exam", exam_id, "exam id")->required();
  report->add_option("--out", out_dir, "output folder")->required();
  report->add_flag("--json", as_json, "machine-readable output");
  std::string verify_ca;
  report
      ->add_option("--verify-ca", verify_ca,
                   "CA certificate the signer must chain to (default: the connection's CA)")
      ->check(CLI::ExistingFile);
  auto* verify = app.add_subcommand(
      "verify",
      "check a saved report folder offline: signature, signer (a reader's signing "
      "certificate, from the signature itself), time, exam");
  std::string verify_dir;
  verify->add_option("dir", verify_dir, "a folder `report` or the agent's inbox wrote")
      ->required()
      ->check(CLI::ExistingDirectory);
  verify->add_option("--exam", exam_id,
                     "the exam the report must be for (default: the one the gateway's receipt "
                     "names)");
  std::string verify_origin;
  verify->add_option("--origin", verify_origin,
                     "the clinic whose exam it must be (default: the O of --cert/RDG_CERT when "
                     "set; `any` to accept any clinic's, e.g. an auditor's check)");
  verify->add_option("--verify-ca", verify_ca, "the platform CA (default: RDG_CA)")
      ->check(CLI::ExistingFile);
  verify->add_flag("--json", as_json, "machine-readable output");
  auto* ack = app.add_subcommand("ack", "acknowledge receipt of an exam's report");
  ack->add_option("exam", exam_id, "exam id")->required();
  ack->add_flag("--json", as_json, "machine-readable output");

  auto* agent = app.add_subcommand(
      "agent",
      "run the clinic edge agent: DICOM C-STORE and HL7 MLLP receivers, a durable "
      "outbox forwarding to the gateway, an inbox for reports");
  std::string agent_config, ready_file;
  agent->add_option("--config", agent_config, "agent configuration (text proto)")->required();
  agent->add_option("--ready-file", ready_file,
                    "write {pid, dicom_port, hl7_port} as JSON here once listening");
  agent->fallthrough();  // `agent status --config X` reads the option of `agent`
  auto* agent_status = agent->add_subcommand(
      "status", "outbox depth and bytes, oldest item, forwarding rate, last error");
  agent_status->add_flag("--json", as_json, "machine-readable output");
  auto* dead_letters = agent->add_subcommand(
      "dead-letters", "list the objects the agent gave up on, queue them again, or remove one");
  dead_letters->add_flag("--json", as_json, "machine-readable output");
  rdg::agent::DeadLetterCommand dead_letter_command;
  auto* retry_one = dead_letters->add_option(
      "--retry", dead_letter_command.retry, "queue dead letter ID again (once the cause is fixed)");
  auto* retry_all = dead_letters->add_flag("--all", dead_letter_command.retry_all,
                                           "queue every dead letter again");
  auto* purge = dead_letters->add_option("--purge", dead_letter_command.purge,
                                         "remove dead letter ID for good (recorded)");
  retry_one->excludes(retry_all)->excludes(purge);
  retry_all->excludes(purge);

  CLI11_PARSE(app, argc, argv);
  // What a tool writes (reports, images, PDFs, exports) holds patient data: owner only.
  ::umask(077);
  if (*agent) {
    if (*agent_status) return rdg::agent::RunAgentStatus(agent_config, as_json);
    if (*dead_letters) {
      return rdg::agent::RunDeadLetters(agent_config, dead_letter_command, as_json);
    }
    return rdg::agent::RunAgent(agent_config, ready_file);
  }
  if (*reports && unacknowledged) return RunUnacknowledged(conn, as_json);
  if (*reports) return RunReports(conn, cursor, watch, max_reports, as_json);
  if (*report) return RunReport(conn, exam_id, out_dir, verify_ca, as_json);
  if (*verify) {
    const std::string origin = verify_origin == "any"  ? std::string()
                               : verify_origin.empty() ? OwnInstitution(conn.cert)
                                                       : verify_origin;
    return RunVerify(verify_dir, exam_id, origin, verify_ca.empty() ? conn.ca : verify_ca, as_json);
  }
  if (*ack) return RunAck(conn, exam_id, as_json);
  if (*upload) {
    rdg::v1::Priority_Parse(priority, &options.priority);
    options.max_bytes_per_second = max_rate_mb * 1e6;
    options.explain_refusal = [&conn] {
      return rdg::clients::ExplainRefusedHandshake(conn, absl::Seconds(10));
    };
    return RunUpload(conn, paths, options, as_json);
  }
  if (*exams) return RunExams(conn, std::max(1, limit), as_json);
  if (*exam) return RunExam(conn, exam_id, as_json);
  if (*uploads) return RunUploads(conn, abort_upload, as_json);
  return RunDownload(conn, exam_id, out_dir, as_json);
}
