// Prometheus text exposition (format 0.0.4) of the gateway's figures for /metrics:
//   rdg_tat_seconds               histogram per stage × county × exam type × priority
//   rdg_tat_within_target_total   completed stages that met their target (same labels)
//   rdg_sla_breaches_total / rdg_sla_breaches_open   per stage
//   rdg_queue_depth / _being_read / _overdue / _oldest_waiting_seconds   per configured queue
//   rdg_ingest_objects_total{outcome}, rdg_ingest_bytes_total, rdg_routing_fallback_total
//   rdg_parser_failures_total{reason}, rdg_parser_restarts_total, rdg_grpc_streams_active{kind}
//   rdg_audit_export_backlog, rdg_audit_export_failures_total,
//   rdg_audit_export_last_delivery_timestamp_seconds   (with an audit repository configured)
//   rdg_ready, rdg_storage_free_bytes, rdg_storage_reserve_bytes,
//   rdg_certificate_expiry_timestamp_seconds{certificate,subject}
//   rdg_grpc_server_handled_total{method,code}, rdg_grpc_server_handling_seconds{method}
//   process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
//   rdg_build_info{version}
// Turnaround series are fed from the index's stage-completion feed (end_seq order), so they are
// exactly what `rdg-admin tat` computes from, survive restarts, and each scrape reads only the
// completions since the previous one. Label values are bounded by the configuration: counties
// and exam types not configured are reported as "(none)" / "other".
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/common/clock.h"
#include "gateway/common/storage_guard.h"
#include "gateway/config/institution_directory.h"
#include "gateway/ingest/ingestor.h"
#include "gateway/monitoring/rpc_metrics.h"
#include "gateway/routing/router.h"
#include "storage/index/audit_store.h"
#include "storage/index/outbound_store.h"
#include "storage/index/sla_store.h"
#include "storage/index/worklist_store.h"
#include "storage/parsing/isolated_parser.h"

namespace rdg::monitoring {

//! Upper bounds (seconds) of the turnaround histogram buckets; +Inf is implied.
const std::vector<double>& TatBuckets();

//! Where the audit export stands (gateway/atna/audit_exporter.h).
struct AuditExportFigures {
  int64_t exported_seq = 0;  //!< the last record the repository confirmed
  int64_t failures = 0;      //!< batches not confirmed since the start
  std::optional<absl::Time> last_delivery;
};

//! A certificate whose end of validity /metrics shows.
struct CertificateExpiry {
  std::string name;     //!< the label: "gateway", "ca"
  std::string subject;  //!< RFC 2253
  absl::Time not_after;
};

class Metrics {
 public:
  struct Sources {
    //! The index's stores it reads.
    storage::SlaStore* sla = nullptr;
    storage::WorklistStore* worklist = nullptr;
    storage::AuditStore* audit = nullptr;
    const config::InstitutionDirectory* directory = nullptr;
    const ingest::Ingestor::Counters* ingest = nullptr;  //!< may be null
    const routing::Router* router = nullptr;             //!< may be null
    const Clock* clock = nullptr;
    const parsing::IsolatedParser::Counters* parser = nullptr;  //!< may be null
    //! The audit export's figures; none when no repository is configured.
    std::function<AuditExportFigures()> audit_export = {};
    //! What /readyz answers (rdg_ready 1 when OK); none: not shown.
    std::function<absl::Status()> ready = {};
    const StorageGuard* storage = nullptr;  //!< free space and reserve; may be null
    const RpcMetrics* rpc = nullptr;        //!< per-method calls and latency; may be null
    std::vector<CertificateExpiry> certificates = {};
    //! The outbound queue (rdg_outbound_*); may be null.
    storage::OutboundStore* outbound = nullptr;
  };
  //! `config` supplies the queues (listed even while empty) and the known exam types.
  Metrics(const rdg::v1::GatewayConfig& config, Sources sources);

  //! The whole exposition, figures as of now.
  absl::StatusOr<std::string> Render();
  //! Reads the stage completions recorded since the last call (the gateway calls this from its
  //! housekeeping, so that the first scrape after a start need not read the whole history).
  absl::Status Refresh();

 private:
  using SeriesKey = std::tuple<std::string, std::string, std::string,
                               std::string>;  // stage, county, type, priority
  struct Histogram {
    std::vector<int64_t> buckets;  //!< non-cumulative counts per TatBuckets() bound, then +Inf
    int64_t count = 0;
    double sum = 0;
    int64_t within_target = 0;
  };
  //! Adds the stage completions recorded since the last call.
  absl::Status CatchUp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  //! The sections of Render(), in the order they appear.
  void RenderTurnaround(std::string& out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RenderBreaches(std::string& out,
                      const std::vector<storage::OpenBreachCount>& open_breaches) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RenderQueues(std::string& out, std::vector<storage::QueueFigureRecord> queues,
                    absl::Time now) const;
  void RenderCounters(std::string& out) const;
  absl::Status RenderAuditExport(std::string& out) const;
  absl::Status RenderOutbound(std::string& out) const;
  //! Readiness, storage, certificates, the process and per-RPC figures.
  void RenderService(std::string& out) const;
  std::string ExamTypeLabel(const std::string& exam_type) const;

  const Sources sources_;
  std::vector<std::string> queues_;
  std::vector<std::string> outbound_destinations_;  //!< configured, listed even without jobs
  absl::flat_hash_set<std::string> exam_types_;
  absl::Mutex mu_;
  int64_t last_end_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<SeriesKey, Histogram> tat_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> closed_breaches_ ABSL_GUARDED_BY(mu_);  //!< by stage label
};

}  // namespace rdg::monitoring
