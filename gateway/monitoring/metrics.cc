#include "gateway/monitoring/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gateway/common/live_streams.h"
#include "gateway/monitoring/process_metrics.h"
#include "gateway/monitoring/turnaround.h"
#include "storage/base/status_macros.h"
#include "storage/base/version.h"

namespace rdg::monitoring {
namespace {

//! A label value with \, " and newline escaped as the exposition format requires.
std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Number(double v) { return absl::StrFormat("%.17g", v); }

void Header(std::string& out, const char* name, const char* type, const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

const std::vector<double>& TatBuckets() {
  static const auto* kBuckets = new std::vector<double>{60,   300,   600,   900,   1800,   3600,
                                                        7200, 14400, 28800, 86400, 172800, 604800};
  return *kBuckets;
}

Metrics::Metrics(const rdg::v1::GatewayConfig& config, Sources sources) : sources_(sources) {
  for (const auto& q : config.queues()) {
    queues_.push_back(q.name());
    for (const auto& t : q.exam_types()) exam_types_.insert(t);
  }
  for (const auto& p : config.sla_policies()) {
    if (p.exam_type() != "*") exam_types_.insert(p.exam_type());
  }
  std::sort(queues_.begin(), queues_.end());
  for (const auto& inst : config.institutions()) {
    for (const auto& d : inst.destinations()) outbound_destinations_.push_back(d.name());
  }
}

std::string Metrics::ExamTypeLabel(const std::string& exam_type) const {
  return exam_types_.contains(exam_type) ? exam_type : "other";
}

absl::Status Metrics::CatchUp() {
  const size_t nbuckets = TatBuckets().size();
  for (;;) {
    RDG_ASSIGN_OR_RETURN(auto batch, sources_.sla->ListStagesEndedAfter(last_end_seq_, 10000));
    for (const auto& s : batch) {
      last_end_seq_ = std::max(last_end_seq_, s.end_seq);
      if (!s.ended_at) continue;
      Histogram& h = tat_[{StageLabel(s.stage), CountyOf(s.origin_institution, *sources_.directory),
                           ExamTypeLabel(s.exam_type), storage::Name(s.priority)}];
      if (h.buckets.empty()) h.buckets.assign(nbuckets + 1, 0);
      const double seconds = absl::ToDoubleSeconds(*s.ended_at - s.started_at);
      const auto& bounds = TatBuckets();
      const size_t i = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
      ++h.buckets[i];  // le is inclusive: the first bound >= the value
      ++h.count;
      h.sum += seconds;
      if (s.WithinTarget()) ++h.within_target;
      if (s.breached_at) ++closed_breaches_[StageLabel(s.stage)];
    }
    if (batch.size() < 10000) return absl::OkStatus();
  }
}

absl::Status Metrics::Refresh() {
  absl::MutexLock lock(&mu_);
  return CatchUp();
}

absl::StatusOr<std::string> Metrics::Render() {
  const absl::Time now = sources_.clock->Now();
  RDG_ASSIGN_OR_RETURN(auto queues, sources_.worklist->ListQueueFigures(now));
  RDG_ASSIGN_OR_RETURN(auto open_breaches, sources_.sla->CountOpenBreaches());
  std::string out;
  absl::MutexLock lock(&mu_);
  RDG_RETURN_IF_ERROR(CatchUp());
  Header(out, "rdg_build_info", "gauge", "Version of the running gateway.");
  absl::StrAppend(&out, "rdg_build_info{version=\"", Escape(ReleaseVersion()), "\"} 1\n");
  RenderTurnaround(out);
  RenderBreaches(out, open_breaches);
  RenderQueues(out, std::move(queues), now);
  RenderCounters(out);
  RDG_RETURN_IF_ERROR(RenderAuditExport(out));
  RDG_RETURN_IF_ERROR(RenderOutbound(out));
  RenderService(out);
  return out;
}

void Metrics::RenderService(std::string& out) const {
  if (sources_.ready) {
    Header(out, "rdg_ready", "gauge",
           "1 when the gateway is ready to take data (GET /readyz gives the reason when 0).");
    absl::StrAppend(&out, "rdg_ready ", sources_.ready().ok() ? 1 : 0, "\n");
  }
  if (sources_.storage != nullptr) {
    if (absl::StatusOr<int64_t> free = sources_.storage->FreeBytes(); free.ok()) {
      Header(out, "rdg_storage_free_bytes", "gauge",
             "Bytes free on the data dir's filesystem (for the gateway's user).");
      absl::StrAppend(&out, "rdg_storage_free_bytes ", *free, "\n");
    }
    Header(out, "rdg_storage_reserve_bytes", "gauge",
           "Free space kept: below it uploads are refused (disk_reserve_mb).");
    absl::StrAppend(&out, "rdg_storage_reserve_bytes ", sources_.storage->reserve_bytes(), "\n");
  }
  if (!sources_.certificates.empty()) {
    Header(out, "rdg_certificate_expiry_timestamp_seconds", "gauge",
           "When a certificate the gateway relies on expires (Unix time).");
    for (const CertificateExpiry& c : sources_.certificates) {
      absl::StrAppend(&out, "rdg_certificate_expiry_timestamp_seconds{certificate=\"",
                      Escape(c.name), "\",subject=\"", Escape(c.subject), "\"} ",
                      absl::ToUnixSeconds(c.not_after), "\n");
    }
  }
  if (sources_.rpc != nullptr) sources_.rpc->Render(out);
  RenderProcessMetrics(out);
}

absl::Status Metrics::RenderAuditExport(std::string& out) const {
  if (!sources_.audit_export) return absl::OkStatus();
  const AuditExportFigures figures = sources_.audit_export();
  RDG_ASSIGN_OR_RETURN(storage::AuditTipRecord tip, sources_.audit->AuditTip());
  Header(out, "rdg_audit_export_backlog", "gauge",
         "Audit records the audit repository has not confirmed yet (they wait in the audit log).");
  absl::StrAppend(&out, "rdg_audit_export_backlog ",
                  std::max<int64_t>(0, tip.seq - figures.exported_seq), "\n");
  // The age of what waits is what matters: every scrape is itself a record, so a healthy
  // gateway's backlog is rarely 0 when read.
  RDG_ASSIGN_OR_RETURN(storage::AuditExportRecord next,
                       sources_.audit->ExportAudit(figures.exported_seq + 1, 1));
  Header(out, "rdg_audit_export_oldest_pending_timestamp_seconds", "gauge",
         "When the oldest record the repository has not confirmed was written (Unix time; 0: "
         "none waits).");
  absl::StrAppend(&out, "rdg_audit_export_oldest_pending_timestamp_seconds ",
                  next.records.empty() ? 0 : absl::ToUnixSeconds(next.records[0].at), "\n");
  Header(out, "rdg_audit_export_failures_total", "counter",
         "Batches of audit records the repository did not confirm, since start-up.");
  absl::StrAppend(&out, "rdg_audit_export_failures_total ", figures.failures, "\n");
  Header(out, "rdg_audit_export_last_delivery_timestamp_seconds", "gauge",
         "When the repository last confirmed a batch (Unix time; 0: not since start-up).");
  absl::StrAppend(&out, "rdg_audit_export_last_delivery_timestamp_seconds ",
                  figures.last_delivery ? absl::ToUnixSeconds(*figures.last_delivery) : 0, "\n");
  return absl::OkStatus();
}

absl::Status Metrics::RenderOutbound(std::string& out) const {
  if (sources_.outbound == nullptr) return absl::OkStatus();
  RDG_ASSIGN_OR_RETURN(std::vector<storage::OutboundSummary> summaries,
                       sources_.outbound->SummarizeOutbound());
  // Every configured destination is listed, with or without jobs yet.
  std::map<std::string, storage::OutboundSummary> by_name;
  for (const std::string& name : outbound_destinations_) by_name[name].destination = name;
  for (storage::OutboundSummary& s : summaries) by_name[s.destination] = std::move(s);
  if (by_name.empty()) return absl::OkStatus();
  Header(out, "rdg_outbound_jobs", "gauge",
         "Pushes to the institutions' PACS and HIS (outbound queue jobs) by destination and "
         "state: pending (waiting or being retried), sent, failed (refused for good).");
  for (const auto& [name, s] : by_name) {
    for (const auto& [state, n] : {std::pair{"pending", s.pending}, std::pair{"sent", s.sent},
                                   std::pair{"failed", s.failed}}) {
      absl::StrAppend(&out, "rdg_outbound_jobs{destination=\"", Escape(name), "\",state=\"", state,
                      "\"} ", n, "\n");
    }
  }
  Header(out, "rdg_outbound_oldest_pending_timestamp_seconds", "gauge",
         "When the oldest job a destination has not taken yet was made (Unix time; 0: none "
         "waits).");
  for (const auto& [name, s] : by_name) {
    absl::StrAppend(
        &out, "rdg_outbound_oldest_pending_timestamp_seconds{destination=\"", Escape(name), "\"} ",
        s.oldest_pending_since ? absl::ToUnixSeconds(*s.oldest_pending_since) : 0, "\n");
  }
  Header(out, "rdg_outbound_last_sent_timestamp_seconds", "gauge",
         "When a destination last took a job (Unix time; 0: never).");
  for (const auto& [name, s] : by_name) {
    absl::StrAppend(&out, "rdg_outbound_last_sent_timestamp_seconds{destination=\"", Escape(name),
                    "\"} ", s.last_sent_at ? absl::ToUnixSeconds(*s.last_sent_at) : 0, "\n");
  }
  return absl::OkStatus();
}

void Metrics::RenderTurnaround(std::string& out) const {
  Header(out, "rdg_tat_seconds", "histogram",
         "Turnaround of completed SLA stages (claim: received to first claim; final: received to "
         "final report; ack: final report to the clinic's acknowledgement; critical_ack: critical "
         "result to acknowledgement), by the origin institution's county.");
  for (const auto& [key, h] : tat_) {
    const auto& [stage, county, type, priority] = key;
    const std::string labels =
        absl::StrCat("stage=\"", Escape(stage), "\",county=\"", Escape(county), "\",exam_type=\"",
                     Escape(type), "\",priority=\"", Escape(priority), "\"");
    int64_t cumulative = 0;
    for (size_t i = 0; i < TatBuckets().size(); ++i) {
      cumulative += h.buckets[i];
      absl::StrAppend(&out, "rdg_tat_seconds_bucket{", labels, ",le=\"", Number(TatBuckets()[i]),
                      "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "rdg_tat_seconds_bucket{", labels, ",le=\"+Inf\"} ", h.count, "\n");
    absl::StrAppend(&out, "rdg_tat_seconds_sum{", labels, "} ", Number(h.sum), "\n");
    absl::StrAppend(&out, "rdg_tat_seconds_count{", labels, "} ", h.count, "\n");
  }
  Header(out, "rdg_tat_within_target_total", "counter",
         "Completed SLA stages that met their target (a stage without a target always does).");
  for (const auto& [key, h] : tat_) {
    const auto& [stage, county, type, priority] = key;
    absl::StrAppend(&out, "rdg_tat_within_target_total{stage=\"", Escape(stage), "\",county=\"",
                    Escape(county), "\",exam_type=\"", Escape(type), "\",priority=\"",
                    Escape(priority), "\"} ", h.within_target, "\n");
  }
}

void Metrics::RenderBreaches(std::string& out,
                             const std::vector<storage::OpenBreachCount>& open_breaches) const {
  // Every breach is either closed (a completed stage with breached_at, counted from the feed)
  // or open (counted on the small partial index of open breaches).
  std::map<std::string, int64_t> open_by_stage;
  for (auto stage :
       {storage::Stage::kReceivedToClaimed, storage::Stage::kReceivedToFinal,
        storage::Stage::kFinalToAcknowledged, storage::Stage::kCriticalAcknowledgement}) {
    open_by_stage[StageLabel(stage)] = 0;
  }
  for (const auto& b : open_breaches) open_by_stage[StageLabel(b.stage)] = b.open;
  Header(out, "rdg_sla_breaches_total", "counter", "SLA breaches recorded, by stage.");
  for (const auto& [stage, open] : open_by_stage) {
    auto closed = closed_breaches_.find(stage);
    absl::StrAppend(&out, "rdg_sla_breaches_total{stage=\"", stage, "\"} ",
                    open + (closed == closed_breaches_.end() ? 0 : closed->second), "\n");
  }
  Header(out, "rdg_sla_breaches_open", "gauge",
         "Stages running past their SLA target now, by stage.");
  for (const auto& [stage, open] : open_by_stage) {
    absl::StrAppend(&out, "rdg_sla_breaches_open{stage=\"", stage, "\"} ", open, "\n");
  }
}

void Metrics::RenderQueues(std::string& out, std::vector<storage::QueueFigureRecord> queues,
                           absl::Time now) const {
  std::map<std::string, storage::QueueFigureRecord> by_queue;
  for (const auto& q : queues_) by_queue[q].queue = q;
  for (auto& q : queues) by_queue[q.queue] = std::move(q);
  struct Gauge {
    const char* name;
    const char* help;
    double (*value)(const storage::QueueFigureRecord&, absl::Time);
  };
  const Gauge gauges[] = {
      {"rdg_queue_depth", "Open exams in a reading queue (routed, claimed, preliminary).",
       [](const storage::QueueFigureRecord& q, absl::Time) { return double(q.depth); }},
      {"rdg_queue_being_read", "Open exams being read (claimed or with a preliminary report).",
       [](const storage::QueueFigureRecord& q, absl::Time) { return double(q.claimed); }},
      {"rdg_queue_overdue", "Open exams past their SLA due time for the final report.",
       [](const storage::QueueFigureRecord& q, absl::Time) { return double(q.overdue); }},
      {"rdg_queue_oldest_waiting_seconds", "Age of the unclaimed exam waiting longest (0: none).",
       [](const storage::QueueFigureRecord& q, absl::Time t) {
         return q.oldest_waiting_since ? absl::ToDoubleSeconds(t - *q.oldest_waiting_since) : 0.0;
       }},
  };
  for (const auto& g : gauges) {
    Header(out, g.name, "gauge", g.help);
    for (const auto& [name, q] : by_queue) {
      absl::StrAppend(&out, g.name, "{queue=\"", Escape(name), "\"} ", Number(g.value(q, now)),
                      "\n");
    }
  }
}

void Metrics::RenderCounters(std::string& out) const {
  if (sources_.ingest != nullptr) {
    Header(out, "rdg_ingest_objects_total", "counter",
           "Uploaded objects since start-up, by outcome (stored, duplicate, refused).");
    absl::StrAppend(&out, "rdg_ingest_objects_total{outcome=\"stored\"} ",
                    sources_.ingest->stored.load(), "\n");
    absl::StrAppend(&out, "rdg_ingest_objects_total{outcome=\"duplicate\"} ",
                    sources_.ingest->duplicates.load(), "\n");
    absl::StrAppend(&out, "rdg_ingest_objects_total{outcome=\"refused\"} ",
                    sources_.ingest->refused.load(), "\n");
    Header(out, "rdg_ingest_bytes_total", "counter", "Bytes of objects stored since start-up.");
    absl::StrAppend(&out, "rdg_ingest_bytes_total ", sources_.ingest->bytes_stored.load(), "\n");
  }
  Header(out, "rdg_grpc_streams_active", "gauge",
         "Streaming calls in progress (uploads, report watches, downloads and fetches).");
  absl::StrAppend(&out, "rdg_grpc_streams_active{kind=\"upload\"} ", LiveStreams().uploads.load(),
                  "\n");
  absl::StrAppend(&out, "rdg_grpc_streams_active{kind=\"watch\"} ", LiveStreams().watches.load(),
                  "\n");
  absl::StrAppend(&out, "rdg_grpc_streams_active{kind=\"objects\"} ",
                  LiveStreams().object_streams.load(), "\n");
  if (sources_.parser != nullptr) {
    Header(out, "rdg_parser_failures_total", "counter",
           "Objects refused because their parser process crashed, timed out or ran out of memory.");
    absl::StrAppend(&out, "rdg_parser_failures_total{reason=\"crashed\"} ",
                    sources_.parser->crashed.load(), "\n");
    absl::StrAppend(&out, "rdg_parser_failures_total{reason=\"timeout\"} ",
                    sources_.parser->timed_out.load(), "\n");
    absl::StrAppend(&out, "rdg_parser_failures_total{reason=\"memory\"} ",
                    sources_.parser->out_of_memory.load(), "\n");
    Header(out, "rdg_parser_restarts_total", "counter",
           "Parser processes started to replace one that failed or grew large.");
    absl::StrAppend(&out, "rdg_parser_restarts_total ", sources_.parser->restarted.load(), "\n");
  }
  if (sources_.router != nullptr) {
    Header(out, "rdg_routing_fallback_total", "counter",
           "Exams no routing rule matched (sent to the fallback queue) since start-up.");
    absl::StrAppend(&out, "rdg_routing_fallback_total ", sources_.router->fallback_count(), "\n");
  }
}

}  // namespace rdg::monitoring
