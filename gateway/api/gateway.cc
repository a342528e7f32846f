#include "gateway/api/gateway.h"

#include <glog/logging.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <malloc.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gateway/api/admin_service.h"
#include "gateway/api/delivery_service.h"
#include "gateway/api/exam_service.h"
#include "gateway/api/ingest_service.h"
#include "gateway/api/reading_service.h"
#include "gateway/api/request_decoding.h"
#include "gateway/common/worker_pool.h"
#include "gateway/config/gateway_config.h"
#include "gateway/config/institution_directory.h"
#include "gateway/ingest/index_committer.h"
#include "gateway/ingest/ingestor.h"
#include "gateway/ingest/text_repair.h"
#include "gateway/monitoring/dashboard.h"
#include "gateway/monitoring/http_server.h"
#include "gateway/monitoring/metrics.h"
#include "gateway/monitoring/turnaround.h"
#include "gateway/routing/router.h"
#include "gateway/signing/report_signature.h"
#include "gateway/worklist/report_desk.h"
#include "rdg/v1/admin.grpc.pb.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "storage/base/status_macros.h"
#include "storage/file_blob_store.h"
#include "storage/parsing/isolated_parser.h"
#include "storage/sqlite_index_store.h"

namespace rdg::api {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsCredentials(
    const rdg::v1::TlsConfig& tls) {
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  RDG_ASSIGN_OR_RETURN(options.pem_root_certs, ReadFile(tls.ca_file(), "tls.ca_file"));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  RDG_ASSIGN_OR_RETURN(pair.private_key, ReadFile(tls.key_file(), "tls.key_file"));
  RDG_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(tls.cert_file(), "tls.cert_file"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(options);
}

//! The HTTP/2 flow-control window of each stream (see the server builder below).
constexpr int kStreamWindowBytes = 4 << 20;

//! The pool of parser processes every uploaded object goes through.
}  // namespace

//! Everything the gateway owns, in construction order (destroyed in reverse).
struct Gateway::Parts {
  rdg::v1::GatewayConfig config;
  const Clock* clock = nullptr;
  std::unique_ptr<config::InstitutionDirectory> directory;
  std::unique_ptr<routing::Router> router;
  std::unique_ptr<routing::SlaTable> sla;
  std::unique_ptr<storage::IndexStore> index;
  std::unique_ptr<storage::BlobStore> blobs;
  std::unique_ptr<ingest::IndexCommitter> committer;
  std::unique_ptr<parsing::IsolatedParser> parser;
  std::unique_ptr<ingest::Ingestor> ingestor;
  std::unique_ptr<WorkerPool> pool;  //!< after the objects its tasks use: drained first
  std::unique_ptr<IngestServiceImpl> ingest_service;
  std::unique_ptr<signing::SignatureVerifier> verifier;
  std::unique_ptr<signing::ReceiptSigner> receipts;  //!< the gateway's signature on receipts
  std::unique_ptr<worklist::ReadingDesk> desk;
  std::unique_ptr<worklist::ReportDesk> reports;
  std::unique_ptr<ExamServiceImpl> exam_service;
  std::unique_ptr<ReadingServiceImpl> reading_service;
  std::unique_ptr<DeliveryServiceImpl> delivery_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<monitoring::Metrics> metrics;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<monitoring::MonitoringServer> monitoring;  //!< stopped before the rest
  int port = 0;
};

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const rdg::v1::GatewayConfig& config,
                                                        const Clock& clock) {
  auto p = std::make_unique<Parts>();
  p->config = config;
  p->clock = &clock;
  p->directory = std::make_unique<config::InstitutionDirectory>(config);
  const std::string& data_dir = config.data_dir();
  RDG_RETURN_IF_ERROR(storage::MakeDirectories(data_dir));
  if (config.index().has_postgres()) {
    return absl::UnimplementedError("index.postgres is not available in this build; use sqlite");
  }
  RDG_ASSIGN_OR_RETURN(auto sqlite,
                       storage::SqliteIndexStore::Open(config.index().sqlite().path()));
  RDG_ASSIGN_OR_RETURN(auto files, storage::FileBlobStore::Create(data_dir + "/blobs"));
  storage::ExamTextRepairs& repairs = *sqlite;
  const storage::FileBlobStore& blob_files = *files;
  p->index = std::move(sqlite);
  p->blobs = std::move(files);
  RDG_ASSIGN_OR_RETURN(auto staging, storage::StagingArea::Create(data_dir + "/uploads"));
  p->committer = std::make_unique<ingest::IndexCommitter>(*p->index, /*max_batch=*/256);
  p->router = std::make_unique<routing::Router>(config);
  p->sla = std::make_unique<routing::SlaTable>(config);
  RDG_ASSIGN_OR_RETURN(p->parser,
                       parsing::StartParserPool(config.parsing(), config.critical_values()));
  p->ingestor = std::make_unique<ingest::Ingestor>(
      ingest::Ingestor::Options{config.limits(), p->router.get(), p->sla.get(),
                                parsing::CriticalValueTable(config.critical_values()),
                                p->parser.get()},
      *p->index, *p->blobs, std::move(staging), *p->committer, clock);
  RDG_RETURN_IF_ERROR(p->ingestor->Recover());
  {
    RDG_ASSIGN_OR_RETURN(
        ingest::TextRepairReport repaired,
        ingest::RepairExamText(repairs, *p->parser, [&blob_files](const std::string& sha256_hex) {
          auto digest = storage::DigestFromHexOrRaw(sha256_hex);
          return digest.ok() ? blob_files.PathOf(*digest) : std::string();
        }));
    if (repaired.reparsed + repaired.unreadable > 0) {
      LOG(INFO) << "index text made UTF-8: " << repaired.reparsed << " exams read again from "
                << "their objects, " << repaired.unreadable << " whose object could not be read "
                << "(shown with U+FFFD where invalid), of " << repaired.examined;
    }
  }
  p->pool = std::make_unique<WorkerPool>(config.worker_threads());
  // Streams idle or stalled are a matter of the network, measured in real time: the platform's
  // (injectable, SLA) clock may be moved ahead by tests and simulations.
  static const RealClock real_clock;
  p->ingest_service = std::make_unique<IngestServiceImpl>(
      *p->ingestor, *p->pool, *p->directory, config.limits(), config.parsing(), real_clock);
  p->exam_service =
      std::make_unique<ExamServiceImpl>(*p->index, *p->blobs, *p->pool, *p->directory, clock);
  RDG_ASSIGN_OR_RETURN(std::string ca_pem, ReadFile(config.tls().ca_file(), "tls.ca_file"));
  RDG_ASSIGN_OR_RETURN(p->verifier, signing::SignatureVerifier::Create(ca_pem));
  p->desk = std::make_unique<worklist::ReadingDesk>(config, *p->index, *p->sla, clock);
  p->reports = std::make_unique<worklist::ReportDesk>(
      *p->index, *p->desk, *p->verifier, *p->sla, clock,
      absl::Seconds(config.max_signing_clock_skew_seconds()));
  p->reading_service = std::make_unique<ReadingServiceImpl>(*p->desk, *p->reports, *p->blobs,
                                                            *p->pool, *p->directory);
  RDG_ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(config.tls().cert_file(), "tls.cert_file"));
  RDG_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(config.tls().key_file(), "tls.key_file"));
  RDG_ASSIGN_OR_RETURN(p->receipts, signing::ReceiptSigner::Create(cert_pem, key_pem));
  p->delivery_service = std::make_unique<DeliveryServiceImpl>(
      *p->reports, *p->pool, *p->directory, config.platform_name(), *p->receipts, clock);
  std::vector<std::string> queue_names;
  for (const auto& q : config.queues()) queue_names.push_back(q.name());
  p->admin_service = std::make_unique<AdminServiceImpl>(*p->index, *p->pool, *p->directory, clock,
                                                        std::move(queue_names));

  RDG_ASSIGN_OR_RETURN(auto credentials, MutualTlsCredentials(config.tls()));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen(), credentials, &p->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.limits().max_chunk_bytes()) + (1 << 20));
  // Keepalive pings find connections that died silently (a van out of coverage) within ~30 s, so
  // their upload sessions are released for the resume from a new connection. Clients ping every
  // 30 s themselves; allow it.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Received data waits in gRPC's buffers until a reactor reads it; BDP probing grows the
  // flow-control windows on fast links until a single 2 GB upload on loopback peaked at 65-129
  // MB resident. A fixed window of 4 MiB per stream still covers a van's link (20 Mbit/s x
  // 200 ms is 500 KB) and bounds what one stream can park in the gateway.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kStreamWindowBytes);
  // Requests that do not decode: INVALID_ARGUMENT naming the field, not gRPC's bare UNIMPLEMENTED.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewRequestDecodingInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(p->ingest_service.get());
  builder.RegisterService(p->exam_service.get());
  builder.RegisterService(p->reading_service.get());
  builder.RegisterService(p->delivery_service.get());
  builder.RegisterService(p->admin_service.get());
  p->server = builder.BuildAndStart();
  if (p->server == nullptr || p->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen(), " (address in use or not local?)"));
  }
  if (!config.monitoring().disabled()) {
    p->metrics = std::make_unique<monitoring::Metrics>(
        config,
        monitoring::Metrics::Sources{p->index.get(), p->directory.get(), &p->ingestor->counters(),
                                     p->router.get(), &clock, &p->parser->counters()});
    Parts* parts = p.get();
    monitoring::MonitoringServer::Handlers handlers;
    handlers.metrics = [parts] { return parts->metrics->Render(); };
    handlers.ready = [parts]() -> absl::Status {
      return parts->index->ListQueueFigures(parts->clock->Now()).status();
    };
    std::vector<std::string> queues;
    for (const auto& q : config.queues()) queues.push_back(q.name());
    handlers.dashboard_data = [parts, queues = std::move(queues),
                               zone = config::DisplayTimeZone(config)]() {
      return monitoring::DashboardData(*parts->index, *parts->directory, queues,
                                       parts->clock->Now(), zone);
    };
    RDG_ASSIGN_OR_RETURN(p->monitoring,
                         monitoring::MonitoringServer::Start(config.monitoring(), config.tls(),
                                                             *p->directory, std::move(handlers)));
  }
  return std::unique_ptr<Gateway>(new Gateway(std::move(p)));
}

Gateway::Gateway(std::unique_ptr<Parts> parts)
    : parts_(std::move(parts)), housekeeper_([this] { HousekeepingLoop(); }) {}

Gateway::~Gateway() { Shutdown(absl::Seconds(30)); }

int Gateway::port() const { return parts_->port; }

int Gateway::monitoring_port() const { return parts_->monitoring ? parts_->monitoring->port() : 0; }

void Gateway::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  housekeeper_.join();
  parts_->monitoring.reset();
  parts_->server->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  parts_->server->Wait();
  parts_->pool.reset();  // runs what reactors queued last (e.g. keeping uploads resumable)
}

void Gateway::SweepBreaches() {
  // Breaches are recorded as their due time passes (the stage's own completion records a late
  // one too); the log line is for operators and carries no patient data.
  for (;;) {
    auto breaches = parts_->index->DetectBreaches(parts_->clock->Now(), 1000);
    if (!breaches.ok()) {
      LOG(WARNING) << "detecting SLA breaches: " << breaches.status();
      return;
    }
    for (const auto& b : *breaches) {
      LOG(WARNING) << "SLA breach: exam " << b.exam_id << " " << monitoring::StageLabel(b.stage)
                   << " due "
                   << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", b.due_at, absl::UTCTimeZone()) << " ("
                   << rdg::v1::Priority_Name(b.priority) << " " << b.exam_type << ", queue "
                   << b.queue << ", from " << b.origin_institution << ")";
    }
    if (breaches->size() < 1000) return;
  }
}

void Gateway::RefreshMetrics() {
  if (parts_->metrics == nullptr) return;
  if (auto s = parts_->metrics->Refresh(); !s.ok()) LOG(WARNING) << "refreshing metrics: " << s;
}

void Gateway::HousekeepingLoop() {
  // Every tick (housekeeping_seconds, default 10) SLA breaches are recorded, expired claim leases
  // go back to their queues and exams unclaimed past their SLA claim target are escalated to the
  // next level, stalled upload streams are ended and free heap memory is returned to the
  // system; every 360th tick expired upload sessions are removed (and at start-up by Recover).
  // Deadlines come from the injected clock.
  const absl::Duration tick_interval = absl::Seconds(
      parts_->config.housekeeping_seconds() > 0 ? parts_->config.housekeeping_seconds() : 10);
  RefreshMetrics();  // so that the first scrape after a start does not read the whole history
  for (int tick = 0;; ++tick) {
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick_interval)) return;
    mu_.Unlock();
    SweepBreaches();
    RefreshMetrics();
    auto leases = parts_->desk->ExpireLeases();
    if (!leases.ok()) LOG(WARNING) << "expiring claim leases: " << leases.status();
    auto escalated = parts_->desk->EscalateOverdue();
    if (!escalated.ok()) {
      LOG(WARNING) << "escalating unclaimed exams: " << escalated.status();
    } else if (*escalated > 0) {
      LOG(INFO) << "escalated " << *escalated << " exams unclaimed past their SLA claim target";
    }
    // Freed memory at the top of malloc's arenas stays resident until trimmed: after a burst of
    // uploads, give it back.
    malloc_trim(0);
    if (int stalled = parts_->ingest_service->CancelStalledStreams(); stalled > 0) {
      LOG(INFO) << "ended " << stalled << " stalled upload streams (their bytes stay resumable)";
    }
    if (tick % 360 == 359) {
      auto expired = parts_->ingestor->ExpireSessions();
      if (!expired.ok()) LOG(WARNING) << "expiring upload sessions: " << expired.status();
    }
    mu_.Lock();
  }
}

}  // namespace rdg::api
