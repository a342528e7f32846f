#include "gateway/api/gateway.h"

#include <dirent.h>
#include <glog/logging.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <malloc.h>

#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "gateway/api/admin_service.h"
#include "gateway/api/call_audit.h"
#include "gateway/api/call_metrics.h"
#include "gateway/api/delivery_service.h"
#include "gateway/api/exam_service.h"
#include "gateway/api/ingest_service.h"
#include "gateway/api/outbound_payloads.h"
#include "gateway/api/reading_service.h"
#include "gateway/api/request_decoding.h"
#include "gateway/atna/audit_exporter.h"
#include "gateway/common/audit_throttle.h"
#include "gateway/common/housekeeper.h"
#include "gateway/common/storage_guard.h"
#include "gateway/config/gateway_config.h"
#include "gateway/config/institution_directory.h"
#include "gateway/dicomweb/dicomweb_server.h"
#include "gateway/dicomweb/study_access.h"
#include "gateway/ingest/index_committer.h"
#include "gateway/ingest/ingestor.h"
#include "gateway/ingest/text_repair.h"
#include "gateway/monitoring/dashboard.h"
#include "gateway/monitoring/http_server.h"
#include "gateway/monitoring/metrics.h"
#include "gateway/monitoring/rpc_metrics.h"
#include "gateway/monitoring/turnaround.h"
#include "gateway/outbound/dispatcher.h"
#include "gateway/routing/router.h"
#include "gateway/signing/certificate.h"
#include "gateway/signing/report_signature.h"
#include "gateway/signing/revocation.h"
#include "gateway/worklist/index_reading_desk.h"
#include "gateway/worklist/index_report_desk.h"
#include "rdg/v1/admin.grpc.pb.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "storage/base/audit_chain.h"
#include "storage/base/dir_lock.h"
#include "storage/base/posix_file.h"
#include "storage/base/status_macros.h"
#include "storage/base/version.h"
#include "storage/base/worker_pool.h"
#include "storage/file_blob_store.h"
#include "storage/parsing/isolated_parser.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/postgres/pg_leadership.h"
#include "storage/postgres/pg_listener.h"
#include "storage/sqlite_index_store.h"

namespace rdg::api {
namespace {

using storage::ReadWholeFile;

//! An audit entry of the gateway itself: started or stopped, with its release and pid.
storage::AuditRecord ApplicationEvent(std::string action, absl::Time at) {
  storage::AuditRecord e;
  e.at = at;
  e.user = "rdg-gateway";
  e.action = std::move(action);
  e.detail = absl::StrCat("rdg ", ReleaseVersion(), ", pid ", ::getpid());
  return e;
}

//! Refuses, at the TLS handshake, a client certificate the platform CA revoked. gRPC has
//! verified the chain to tls.ca_file before it asks.
class RevocationCheck final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  //! Refusals are audited in `audit` (written on `pool`).
  RevocationCheck(signing::RevocationList* revocations, storage::AuditStore& audit,
                  WorkerPool& pool, const Clock& clock)
      : revocations_(revocations), audit_(audit), pool_(pool), clock_(clock) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    if (auto revoked = revocations_->RevokedAt(absl::string_view(pem.data(), pem.size()));
        revoked.has_value()) {
      const std::string subject = signing::SubjectLine(absl::string_view(pem.data(), pem.size()));
      LOG(WARNING) << "TLS handshake refused: a revoked client certificate (" << subject << ")";
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "the client certificate was revoked by the platform CA");
      // gRPC's verifier API does not tell the peer's address; the subject names the caller. A
      // revoked device retrying: one record a minute, counting the rest.
      const absl::Time now = clock_.Now();
      if (const std::optional<int64_t> left_out = throttle_.Admit(subject, now)) {
        storage::AuditRecord refusal;
        refusal.at = now;
        refusal.action = "tls_handshake";
        refusal.outcome = "UNAUTHENTICATED";
        refusal.subject = subject;
        refusal.detail =
            absl::StrCat("certificate revoked at ",
                         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *revoked, absl::UTCTimeZone()),
                         AuditThrottle::LeftOut(*left_out));
        AppendAuditLater(audit_, pool_, std::move(refusal));
      }
    } else {
      *sync_status = grpc::Status::OK;
    }
    return true;  // decided synchronously
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  signing::RevocationList* const revocations_;
  storage::AuditStore& audit_;
  WorkerPool& pool_;
  const Clock& clock_;
  AuditThrottle throttle_;
};

//! Mutual TLS: a client certificate chained to tls.ca_file is required, and it must not be
//! revoked (RevocationCheck).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsCredentials(
    const rdg::v1::TlsConfig& tls, signing::RevocationList* revocations, storage::AuditStore& audit,
    WorkerPool& pool, const Clock& clock) {
  RDG_ASSIGN_OR_RETURN(std::string roots, ReadWholeFile(tls.ca_file(), "tls.ca_file"));
  RDG_ASSIGN_OR_RETURN(std::string key, ReadWholeFile(tls.key_file(), "tls.key_file"));
  RDG_ASSIGN_OR_RETURN(std::string chain, ReadWholeFile(tls.cert_file(), "tls.cert_file"));
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      roots, std::vector<grpc::experimental::IdentityKeyCertPair>{{key, chain}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<RevocationCheck>(revocations, audit,
                                                                               pool, clock));
  return grpc::experimental::TlsServerCredentials(options);
}

//! The HTTP/2 flow-control window of each stream (see StartServing).
constexpr int kStreamWindowBytes = 4 << 20;

}  // namespace

//! What the configuration decides: institutions, routing rules, SLA targets.
struct Policy {
  std::unique_ptr<config::InstitutionDirectory> directory;
  std::unique_ptr<routing::Router> router;
  std::unique_ptr<routing::SlaTable> sla;
};

//! The data dir's lock, the index and the blob store, and the guard over their disk.
struct Stores {
  std::optional<storage::DirectoryLock> lock;  //!< first built, last released
  std::unique_ptr<storage::IndexStore> index;
  std::unique_ptr<storage::BlobStore> blobs;
  storage::ExamTextRepairs* repairs = nullptr;         //!< the index's start-up repairs
  const storage::FileBlobStore* blob_files = nullptr;  //!< the blobs' paths, for those repairs
  std::unique_ptr<StorageGuard> guard;
  //! Whether this gateway runs the housekeeping of its index (one of several on PostgreSQL).
  std::unique_ptr<storage::Leadership> leadership;
};

//! Uploads: the parser processes, the group committer, the ingestor.
struct Ingest {
  std::unique_ptr<ingest::IndexCommitter> committer;
  std::unique_ptr<parsing::IsolatedParser> parser;
  std::unique_ptr<ingest::Ingestor> ingestor;
  //! The upload limits, shared by gRPC uploads and STOW-RS.
  std::unique_ptr<ingest::UploadSlots> slots;
};

//! Reading and reports: the desks and what they sign and verify with.
struct Desks {
  //! tls.crl_file: asked at every handshake, call and report signature
  std::unique_ptr<signing::RevocationList> revocations;
  std::unique_ptr<signing::SignatureVerifier> verifier;
  std::unique_ptr<signing::ReceiptSigner> receipts;  //!< the gateway's signature on receipts
  std::unique_ptr<worklist::ReadingDesk> reading;
  std::unique_ptr<worklist::ReportDesk> reports;
  //! On a PostgreSQL index: hears reports signed through any gateway and wakes the watches here.
  std::unique_ptr<storage::pg::Listener> report_listener;
};

//! The gRPC side: the pools blocking work runs on (declared first: drained after the services
//! are gone from the server), who is calling, the services, the server.
struct Serving {
  std::unique_ptr<WorkerPool> pool;         //!< interactive calls
  std::unique_ptr<WorkerPool> ingest_pool;  //!< uploads, at a lower CPU priority
  std::unique_ptr<TlsPeerAuthenticator> authenticator;
  std::unique_ptr<IngestServiceImpl> ingest;
  std::unique_ptr<ExamServiceImpl> exams;
  std::unique_ptr<ReadingServiceImpl> reading;
  std::unique_ptr<DeliveryServiceImpl> delivery;
  std::unique_ptr<AdminServiceImpl> admin;
  std::unique_ptr<monitoring::RpcMetrics> rpc_metrics;  //!< every call, for /metrics
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

//! /metrics, /dashboard, /healthz (absent when monitoring is disabled).
struct Monitoring {
  std::unique_ptr<monitoring::Metrics> metrics;
  std::unique_ptr<monitoring::MonitoringServer> server;
};

//! DICOMweb for viewers and PACS (none without dicomweb.listen).
struct DicomWeb {
  std::unique_ptr<dicomweb::StudyAccess> access;
  std::unique_ptr<dicomweb::DicomWebServer> server;
};

//! Pushes to the institutions' PACS and HIS (none without destinations configured).
struct Outbound {
  std::unique_ptr<IndexPayloads> payloads;
  std::unique_ptr<outbound::Sender> sender;
  std::unique_ptr<outbound::Dispatcher> dispatcher;
};

//! Everything the gateway owns, built in this order by Start and destroyed in reverse (Shutdown
//! stops housekeeping, monitoring and the server first).
struct Gateway::Components {
  rdg::v1::GatewayConfig config;
  const Clock* clock = nullptr;
  Policy policy;
  Stores stores;
  std::unique_ptr<atna::AuditExporter> audit_export;  //!< none without audit_export configured
  Ingest ingest;
  Desks desks;
  Serving serving;
  Monitoring monitoring;
  DicomWeb dicomweb;
  Outbound outbound;
  std::unique_ptr<Housekeeper> housekeeper;
};

namespace {

Policy BuildPolicy(const rdg::v1::GatewayConfig& config) {
  Policy p;
  p.directory = std::make_unique<config::InstitutionDirectory>(config);
  p.router = std::make_unique<routing::Router>(config);
  p.sla = std::make_unique<routing::SlaTable>(config);
  return p;
}

//! Creates the data dir (0700; a looser existing one is tightened), locks it against a second
//! gateway, and proves it writable before anything is served from it.
//! Index snapshots of backups are unlinked as soon as they are open; a crash in between leaves
//! one (a copy of every patient's data): removed at the next start.
void RemoveLeftBackupSnapshots(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    if (absl::StartsWith(e->d_name, ".backup-")) {
      LOG(WARNING) << "removing a backup snapshot left by a crash: " << dir << "/" << e->d_name;
      ::unlinkat(::dirfd(d), e->d_name, 0);
    }
  }
  ::closedir(d);
}

//! `shared`: gateways on one PostgreSQL index share their data dir (blobs, staged uploads).
absl::StatusOr<storage::DirectoryLock> ClaimDataDir(const std::string& dir, bool shared) {
  RDG_RETURN_IF_ERROR(storage::MakeDirectories(dir));
  RDG_ASSIGN_OR_RETURN(bool tightened, storage::RestrictToOwner(dir));
  if (tightened) LOG(WARNING) << "data dir " << dir << " was open to other users: now mode 0700";
  RDG_ASSIGN_OR_RETURN(storage::DirectoryLock lock, shared
                                                        ? storage::DirectoryLock::AcquireShared(dir)
                                                        : storage::DirectoryLock::Acquire(dir));
  RDG_RETURN_IF_ERROR(storage::ProbeWritable(dir));
  RemoveLeftBackupSnapshots(dir);
  return lock;
}

//! The index the configuration names: SQLite in the data dir (the default) or PostgreSQL; its
//! StorageGuard watches the data dir and whether the index takes writes.
absl::StatusOr<std::unique_ptr<storage::IndexStore>> OpenIndex(const rdg::v1::IndexConfig& index,
                                                               Stores& s) {
  if (!index.has_postgres()) {
    RDG_ASSIGN_OR_RETURN(auto sqlite, storage::SqliteIndexStore::Open(index.sqlite().path()));
    s.repairs = sqlite.get();
    return sqlite;
  }
  const int pool_size = index.postgres().pool_size() > 0 ? index.postgres().pool_size() : 16;
  RDG_ASSIGN_OR_RETURN(auto pg, storage::pg::PostgresIndexStore::Open(
                                    {.conninfo = index.postgres().conninfo(), .size = pool_size}));
  return pg;
}

absl::StatusOr<Stores> OpenStores(const rdg::v1::GatewayConfig& config, const Clock& clock) {
  Stores s;
  RDG_ASSIGN_OR_RETURN(s.lock, ClaimDataDir(config.data_dir(), config.index().has_postgres()));
  RDG_ASSIGN_OR_RETURN(s.index, OpenIndex(config.index(), s));
  RDG_ASSIGN_OR_RETURN(auto files, storage::FileBlobStore::Create(config.data_dir() + "/blobs"));
  RDG_RETURN_IF_ERROR(storage::ProbeWritable(config.data_dir() + "/blobs"));
  const bool postgres = config.index().has_postgres();
  const std::string index_name = postgres ? "on PostgreSQL" : config.index().sqlite().path();
  // A gateway start is an audited event (ATNA's Application Activity), and the proof that the
  // index takes writes.
  if (auto written = s.index->AppendAudit(ApplicationEvent("application_start", clock.Now()));
      !written.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the index ", index_name, " refuses writes: ", written.message()));
  }
  s.blob_files = files.get();
  s.blobs = std::move(files);
  StorageGuard::Options guard;
  guard.data_dir = config.data_dir();
  guard.index_path = config.index().sqlite().path();
  guard.reserve_bytes = config.disk_reserve_mb() << 20;
  if (postgres) {
    auto& pool = static_cast<storage::pg::PostgresIndexStore&>(*s.index).pool();
    // libpq's reason names the database's host and port: it goes to the log (once per change),
    // not to /readyz or callers.
    struct LastReason {
      absl::Mutex mu;
      std::string text ABSL_GUARDED_BY(mu);
    };
    guard.index_probe = [&pool, last = std::make_shared<LastReason>()]() -> absl::Status {
      static constexpr char kProbe[] = "SELECT 1";
      auto r = pool.Query(kProbe, {});
      std::string detail;
      if (!r.ok()) {
        const std::string why = pool.LastConnectError();
        detail = absl::StrCat(r.status().message(), why.empty() ? "" : " (", why,
                              why.empty() ? "" : ")");
      }
      {
        absl::MutexLock lock(&last->mu);
        if (!detail.empty() && detail != last->text) {
          LOG(WARNING) << "the index on PostgreSQL cannot be reached: " << detail;
        }
        last->text = detail;
      }
      if (r.ok()) return absl::OkStatus();
      return absl::UnavailableError("the index on PostgreSQL cannot be reached");
    };
  }
  RDG_ASSIGN_OR_RETURN(s.guard, StorageGuard::Start(std::move(guard)));
  if (postgres) {
    s.leadership =
        std::make_unique<storage::pg::AdvisoryLeadership>(config.index().postgres().conninfo());
  } else {
    s.leadership = std::make_unique<storage::SoleLeadership>();
  }
  if (absl::Status safe = s.guard->Check(); !safe.ok()) {
    LOG(WARNING) << "not ready: " << safe.message();
  }
  return s;
}

//! Starts the parser pool, recovers unfinished uploads and makes the index's text UTF-8.
absl::StatusOr<Ingest> StartIngest(const rdg::v1::GatewayConfig& config, const Policy& policy,
                                   const Stores& stores, const Clock& clock) {
  Ingest in;
  RDG_ASSIGN_OR_RETURN(auto staging, storage::StagingArea::Create(config.data_dir() + "/uploads"));
  RDG_RETURN_IF_ERROR(storage::ProbeWritable(config.data_dir() + "/uploads"));
  // A blobs/ mounted apart would refuse every upload at its commit (link: EXDEV), forever.
  RDG_RETURN_IF_ERROR(
      storage::ProbeHardLink(config.data_dir() + "/uploads", config.data_dir() + "/blobs"));
  storage::IndexStore& index = *stores.index;
  in.committer = std::make_unique<ingest::IndexCommitter>(index.exams(), /*max_batch=*/256,
                                                          stores.blobs.get());
  RDG_ASSIGN_OR_RETURN(
      in.parser,
      parsing::StartParserPool(config.parsing(), config.critical_values(), config.ingest_nice()));
  in.ingestor = std::make_unique<ingest::Ingestor>(
      ingest::Ingestor::Options{config.limits(), policy.router.get(), policy.sla.get(),
                                parsing::CriticalValueTable(config.critical_values()),
                                in.parser.get(), stores.guard.get()},
      ingest::Ingestor::Stores{index.sessions(), index.exams(), index.audit(),
                               index.identity_conflicts()},
      *stores.blobs, std::move(staging), *in.committer, clock);
  RDG_RETURN_IF_ERROR(in.ingestor->Recover());
  in.slots = std::make_unique<ingest::UploadSlots>(
      config.limits().max_concurrent_uploads(),
      config.limits().max_concurrent_uploads_per_institution());
  // A PostgreSQL index held only UTF-8 from its first schema: nothing to repair.
  if (stores.repairs == nullptr) return in;
  const storage::FileBlobStore& blob_files = *stores.blob_files;
  RDG_ASSIGN_OR_RETURN(
      ingest::TextRepairReport repaired,
      ingest::RepairExamText(*stores.repairs, *in.parser,
                             [&blob_files](const std::string& sha256_hex) {
                               auto digest = storage::DigestFromHexOrRaw(sha256_hex);
                               return digest.ok() ? blob_files.PathOf(*digest) : std::string();
                             }));
  if (repaired.reparsed + repaired.unreadable > 0) {
    LOG(INFO) << "index text made UTF-8: " << repaired.reparsed << " exams read again from "
              << "their objects, " << repaired.unreadable << " whose object could not be read "
              << "(shown with U+FFFD where invalid), of " << repaired.examined;
  }
  return in;
}

absl::StatusOr<Desks> BuildDesks(const rdg::v1::GatewayConfig& config, const Policy& policy,
                                 const Stores& stores, const Clock& clock) {
  Desks d;
  RDG_ASSIGN_OR_RETURN(std::string ca_pem, ReadWholeFile(config.tls().ca_file(), "tls.ca_file"));
  RDG_ASSIGN_OR_RETURN(d.revocations,
                       signing::RevocationList::Open(config.tls().crl_file(), ca_pem));
  RDG_ASSIGN_OR_RETURN(d.verifier,
                       signing::CmsSignatureVerifier::Create(ca_pem, d.revocations.get()));
  RDG_ASSIGN_OR_RETURN(std::string cert_pem,
                       ReadWholeFile(config.tls().cert_file(), "tls.cert_file"));
  RDG_ASSIGN_OR_RETURN(std::string key_pem, ReadWholeFile(config.tls().key_file(), "tls.key_file"));
  RDG_ASSIGN_OR_RETURN(d.receipts, signing::CmsReceiptSigner::Create(cert_pem, key_pem));
  storage::IndexStore& index = *stores.index;
  d.reading = std::make_unique<worklist::IndexReadingDesk>(
      config,
      worklist::IndexReadingDesk::Stores{index.worklist(), index.exams(), index.reports(),
                                         index.lab_results(), index.audit(),
                                         index.identity_conflicts()},
      *policy.sla, clock);
  auto reports = std::make_unique<worklist::IndexReportDesk>(
      worklist::IndexReportDesk::Stores{index.reports(), index.exams(), index.audit()}, *d.reading,
      *d.verifier, *policy.sla, clock, absl::Seconds(config.max_signing_clock_skew_seconds()));
  if (config.index().has_postgres()) {
    // A report signed through another gateway wakes this one's watches of its clinic; after a
    // lost connection (payload ""), every watch looks again.
    worklist::IndexReportDesk* desk = reports.get();
    d.report_listener = std::make_unique<storage::pg::Listener>(
        config.index().postgres().conninfo(), RDG_REPORTS_CHANNEL,
        [desk](const std::string& institution) { desk->WakeWatchers(institution); });
  }
  d.reports = std::move(reports);
  return d;
}

//! The configured destinations, by name.
std::vector<outbound::Destination> ConfiguredDestinations(const rdg::v1::GatewayConfig& config) {
  std::vector<outbound::Destination> out;
  for (auto& [name, d] : outbound::Dispatcher::DestinationsOf(config)) out.push_back(d);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.config.name() < b.config.name(); });
  return out;
}

//! The services over the desks and stores, on a pool of config.worker_threads.
void BuildServices(const rdg::v1::GatewayConfig& config, const Policy& policy, const Stores& stores,
                   const Ingest& ingest, const Desks& desks, const Clock& clock, Serving& s) {
  s.pool = std::make_unique<WorkerPool>(config.worker_threads(), "rdg-calls");
  s.ingest_pool =
      std::make_unique<WorkerPool>(config.ingest_threads(), "rdg-ingest", config.ingest_nice());
  s.authenticator =
      std::make_unique<TlsPeerAuthenticator>(*policy.directory, desks.revocations.get());
  const ServiceContext context{*s.pool, *s.authenticator, *policy.directory};
  // Streams idle or stalled are a matter of the network, measured in real time: the platform's
  // (injectable, SLA) clock may be moved ahead by tests and simulations.
  static const RealClock real_clock;
  const ServiceContext ingest_context{*s.ingest_pool, *s.authenticator, *policy.directory};
  s.ingest = std::make_unique<IngestServiceImpl>(*ingest.ingestor, ingest_context, *ingest.slots,
                                                 config.limits(), config.parsing(), real_clock);
  storage::IndexStore& index = *stores.index;
  s.exams = std::make_unique<ExamServiceImpl>(ExamServiceImpl::Stores{index.exams(), index.audit()},
                                              *stores.blobs, context, clock);
  s.reading =
      std::make_unique<ReadingServiceImpl>(*desks.reading, *desks.reports, *stores.blobs, context);
  s.delivery = std::make_unique<DeliveryServiceImpl>(
      *desks.reports, context, config.platform_name(), *desks.receipts, clock);
  std::vector<std::string> queue_names;
  for (const auto& q : config.queues()) queue_names.push_back(q.name());
  BackupSource backup{stores.blobs.get(),
                      config.data_dir(),
                      {config.backup_users().begin(), config.backup_users().end()},
                      config.index().sqlite().path(),
                      stores.guard.get()};
  s.admin = std::make_unique<AdminServiceImpl>(
      AdminServiceImpl::Stores{index.exams(), index.worklist(), index.sla(), index.audit(),
                               index.identity_conflicts(), index.backup(), index.outbound()},
      context, clock, std::move(queue_names), std::move(backup), ConfiguredDestinations(config));
}

//! The gRPC server with mutual TLS on config.listen.
absl::Status StartServer(const rdg::v1::GatewayConfig& config, const Policy& policy,
                         const Stores& stores, const Desks& desks, const Clock& clock, Serving& s) {
  RDG_ASSIGN_OR_RETURN(auto credentials,
                       MutualTlsCredentials(config.tls(), desks.revocations.get(),
                                            stores.index->audit(), *s.pool, clock));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen(), credentials, &s.port);
  // gRPC sets SO_REUSEPORT by default: a second gateway on the same port would start and take
  // half of the connections. Off, a port in use is an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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
  // Every refused call: a record in the audit log. Every call: its figures for /metrics.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewRequestDecodingInterceptorFactory());
  interceptors.push_back(
      NewRefusalAuditInterceptorFactory(*stores.index, *s.pool, clock, *policy.directory));
  s.rpc_metrics = std::make_unique<monitoring::RpcMetrics>();
  interceptors.push_back(NewCallMetricsInterceptorFactory(*s.rpc_metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(s.ingest.get());
  builder.RegisterService(s.exams.get());
  builder.RegisterService(s.reading.get());
  builder.RegisterService(s.delivery.get());
  builder.RegisterService(s.admin.get());
  s.server = builder.BuildAndStart();
  if (s.server == nullptr || s.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen(), " (address in use or not local?)"));
  }
  return absl::OkStatus();
}

//! The audit export to the repository of config.audit_export (null when none is configured).
absl::StatusOr<std::unique_ptr<atna::AuditExporter>> StartAuditExport(
    const rdg::v1::GatewayConfig& config, const Stores& stores, const Clock& clock) {
  const rdg::v1::AuditExportConfig& e = config.audit_export();
  if (e.syslog_address().empty()) return nullptr;
  atna::AuditExporter::Options o;
  const size_t colon = e.syslog_address().rfind(':');  // the configuration checked host:port
  o.repository.host = std::string(absl::StripSuffix(
      absl::StripPrefix(absl::string_view(e.syslog_address()).substr(0, colon), "["), "]"));
  if (!absl::SimpleAtoi(e.syslog_address().substr(colon + 1), &o.repository.port)) {
    return absl::InvalidArgumentError("audit_export.syslog_address: no port");
  }
  o.repository.server_name = e.server_name();
  o.repository.ca_file = e.ca_file();
  o.repository.cert_file = e.cert_file();
  o.repository.key_file = e.key_file();
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  o.source.hostname = host;
  o.source.source_id =
      e.audit_source_id().empty() ? absl::StrCat("rdg-gateway@", host) : e.audit_source_id();
  o.source.site_id = config.platform_name();
  o.source.pid = static_cast<int>(::getpid());
  o.batch_records = e.batch_records();
  o.leads = [&leadership = *stores.leadership] { return leadership.Leads(); };
  return atna::AuditExporter::Start({stores.index->audit(), stores.index->exams()}, std::move(o),
                                    clock);
}

//! The certificates /metrics shows the expiry of: the gateway's own (the first of its chain) and
//! every certificate of the platform CA file.
std::vector<monitoring::CertificateExpiry> WatchedCertificates(const rdg::v1::TlsConfig& tls) {
  std::vector<monitoring::CertificateExpiry> out;
  for (const auto& [name, path, all] : {std::make_tuple("gateway", tls.cert_file(), false),
                                        std::make_tuple("ca", tls.ca_file(), true)}) {
    absl::StatusOr<std::string> pem = ReadWholeFile(path, name);
    absl::StatusOr<std::vector<signing::CertificateValidity>> certificates =
        pem.ok() ? signing::CertificatesIn(*pem) : pem.status();
    if (!certificates.ok()) {
      LOG(WARNING) << "certificate expiry of " << path << " not shown: " << certificates.status();
      continue;
    }
    for (const signing::CertificateValidity& c : *certificates) {
      out.push_back({name, c.subject, c.not_after});
      if (!all) break;
    }
  }
  return out;
}

absl::StatusOr<Monitoring> StartMonitoring(const rdg::v1::GatewayConfig& config,
                                           const Policy& policy, const Stores& stores,
                                           const Ingest& ingest, const Desks& desks,
                                           const Serving& serving,
                                           const atna::AuditExporter* audit_export,
                                           const Clock& clock) {
  Monitoring m;
  if (config.monitoring().disabled()) return m;
  storage::IndexStore& index = *stores.index;
  StorageGuard* guard = stores.guard.get();
  auto ready = [&worklist = index.worklist(), guard, &clock]() -> absl::Status {
    RDG_RETURN_IF_ERROR(guard->Check());
    return worklist.ListQueueFigures(clock.Now()).status();
  };
  monitoring::Metrics::Sources sources{&index.sla(),
                                       &index.worklist(),
                                       &index.audit(),
                                       policy.directory.get(),
                                       &ingest.ingestor->counters(),
                                       policy.router.get(),
                                       &clock,
                                       &ingest.parser->counters()};
  if (audit_export != nullptr) {
    sources.audit_export = [audit_export] {
      const atna::AuditExporter::Figures f = audit_export->figures();
      return monitoring::AuditExportFigures{f.exported_seq, f.failures, f.last_delivery};
    };
  }
  sources.ready = ready;
  sources.storage = guard;
  sources.rpc = serving.rpc_metrics.get();
  sources.certificates = WatchedCertificates(config.tls());
  sources.outbound = &index.outbound();
  m.metrics = std::make_unique<monitoring::Metrics>(config, std::move(sources));
  monitoring::Metrics* metrics = m.metrics.get();
  const config::InstitutionDirectory* directory = policy.directory.get();
  monitoring::MonitoringServer::Handlers handlers;
  handlers.metrics = [metrics] { return metrics->Render(); };
  signing::RevocationList* revocations = desks.revocations.get();
  handlers.revoked = [revocations](absl::string_view pem) {
    return revocations->RevokedAt(pem).has_value();
  };
  handlers.ready = ready;
  handlers.audit = [&audit = index.audit()](const storage::AuditRecord& record) {
    absl::Status written = audit.AppendAudit(record);
    if (!written.ok())
      LOG(ERROR) << "audit record " << record.action << " not written: " << written;
    return written;
  };
  std::vector<std::string> queues;
  for (const auto& q : config.queues()) queues.push_back(q.name());
  const monitoring::DashboardStores dashboard{index.sla(), index.worklist(), index.audit(),
                                              index.identity_conflicts()};
  handlers.dashboard_data = [dashboard, directory, &clock, queues = std::move(queues),
                             zone = config::DisplayTimeZone(config)]() {
    return monitoring::DashboardData(dashboard, *directory, queues, clock.Now(), zone);
  };
  RDG_ASSIGN_OR_RETURN(m.server,
                       monitoring::MonitoringServer::Start(config.monitoring(), config.tls(),
                                                           *policy.directory, std::move(handlers)));
  return m;
}

//! Records SLA breaches that fell due since the last sweep. The log line is for operators and
//! carries no patient data. (A stage's own completion records a late one too.)
void SweepBreaches(storage::SlaStore& sla, const Clock& clock) {
  for (;;) {
    auto breaches = sla.DetectBreaches(clock.Now(), 1000);
    if (!breaches.ok()) {
      LOG(WARNING) << "detecting SLA breaches: " << breaches.status();
      return;
    }
    for (const auto& b : *breaches) {
      LOG(WARNING) << "SLA breach: exam " << b.exam_id << " " << monitoring::StageLabel(b.stage)
                   << " due "
                   << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", b.due_at, absl::UTCTimeZone()) << " ("
                   << storage::Name(b.priority) << " " << b.exam_type << ", queue " << b.queue
                   << ", from " << b.origin_institution << ")";
    }
    if (breaches->size() < 1000) return;
  }
}

//! Signs the end of the audit chain when records were added since the last checkpoint.
void CheckpointAudit(storage::AuditStore& audit, const signing::ReceiptSigner& signer,
                     const Clock& clock) {
  absl::StatusOr<storage::AuditTipRecord> tip = audit.AuditTip();
  if (!tip.ok()) {
    LOG(WARNING) << "reading the audit chain's end: " << tip.status();
    return;
  }
  if (tip->table_last_seq != tip->seq) {
    LOG(ERROR) << "audit log: the index's last record is " << tip->table_last_seq
               << ", the last this gateway linked is " << tip->seq
               << ": the table was changed behind the gateway; run rdg-admin audit verify";
  }
  if (tip->seq == 0 || tip->seq == tip->checkpointed_seq) return;
  // What the gateway linked itself, never what the table says now.
  const int64_t now = absl::ToUnixSeconds(clock.Now());
  storage::AuditCheckpointRecord c;
  c.seq = tip->seq;
  c.hash = tip->hash;
  c.signed_at = absl::FromUnixSeconds(now);
  c.statement = audit::CheckpointStatement(c.seq, c.hash, now, tip->checkpointed_seq,
                                           tip->checkpoint_statement);
  absl::StatusOr<std::string> signature = signer.Sign(c.statement);
  if (!signature.ok()) {
    LOG(WARNING) << "signing an audit checkpoint: " << signature.status();
    return;
  }
  c.signature = *std::move(signature);
  if (absl::Status s = audit.AppendAuditCheckpoint(c); !s.ok()) {
    LOG(WARNING) << "writing an audit checkpoint: " << s;
  }
}

void RefreshMetrics(monitoring::Metrics* metrics) {
  if (metrics == nullptr) return;
  if (auto s = metrics->Refresh(); !s.ok()) LOG(WARNING) << "refreshing metrics: " << s;
}

//! Every housekeeping_seconds (default 10) by the injected clock: SLA breaches are recorded,
//! metrics refreshed, expired claim leases go back to their queues, exams unclaimed past their
//! SLA claim target are escalated to the next level, storage is checked (StorageGuard), free
//! heap memory is returned to the system and stalled upload streams are ended; every
//! audit_checkpoint_seconds the audit chain's end is signed; every 360 housekeeping periods
//! expired upload sessions are removed (and at start-up by Ingestor::Recover).
std::unique_ptr<Housekeeper> StartHousekeeping(Gateway::Components& c) {
  const absl::Duration every =
      absl::Seconds(c.config.housekeeping_seconds() > 0 ? c.config.housekeeping_seconds() : 10);
  // Several gateways on one PostgreSQL index: the index's own jobs run on the leader only.
  storage::Leadership& leadership = *c.stores.leadership;
  auto h = std::make_unique<Housekeeper>(
      *c.clock, every, [&leadership, was = std::make_shared<std::optional<bool>>()] {
        const bool leads = leadership.Leads();
        if (*was != leads) {
          LOG(INFO) << (leads ? "this gateway now runs the index's housekeeping (leader)"
                              : "another gateway runs the index's housekeeping");
          *was = leads;
        }
        return leads;
      });
  constexpr auto kLeaderOnly = Housekeeper::Scope::kLeaderOnly;
  storage::IndexStore& index = *c.stores.index;
  const Clock& clock = *c.clock;
  monitoring::Metrics* metrics = c.monitoring.metrics.get();
  worklist::ReadingDesk& desk = *c.desks.reading;
  h->Add(
      "sla-breaches", every, [&index, &clock] { SweepBreaches(index, clock); }, kLeaderOnly);
  StorageGuard& guard = *c.stores.guard;
  h->Add("storage", every, [&guard, last = std::make_shared<std::string>()] {
    const absl::Status now = guard.Check();
    const std::string message(now.message());
    if (message == *last) return;
    if (now.ok()) {
      LOG(INFO) << "storage safe again: accepting uploads";
    } else {
      LOG(WARNING) << "not ready, uploads refused: " << message;
    }
    *last = message;
  });
  h->Add("metrics", every, [metrics] { RefreshMetrics(metrics); });
  h->Add(
      "claim-leases", every,
      [&desk] {
        auto leases = desk.ExpireLeases();
        if (!leases.ok()) LOG(WARNING) << "expiring claim leases: " << leases.status();
      },
      kLeaderOnly);
  h->Add(
      "escalation", every,
      [&desk] {
        auto escalated = desk.EscalateOverdue();
        if (!escalated.ok()) {
          LOG(WARNING) << "escalating unclaimed exams: " << escalated.status();
        } else if (*escalated > 0) {
          LOG(INFO) << "escalated " << *escalated << " exams unclaimed past their SLA claim target";
        }
      },
      kLeaderOnly);
  // Freed memory at the top of malloc's arenas stays resident until trimmed: after a burst of
  // uploads, give it back.
  h->Add("heap-trim", every, [] { malloc_trim(0); });
  const signing::ReceiptSigner& signer = *c.desks.receipts;
  h->Add(
      "audit-checkpoint", absl::Seconds(c.config.audit_checkpoint_seconds()),
      [&index, &signer, &clock] { CheckpointAudit(index, signer, clock); }, kLeaderOnly);
  IngestServiceImpl& uploads = *c.serving.ingest;
  h->Add("stalled-streams", every, [&uploads] {
    if (int stalled = uploads.CancelStalledStreams(); stalled > 0) {
      LOG(INFO) << "ended " << stalled << " stalled upload streams (their bytes stay resumable)";
    }
  });
  ingest::Ingestor& ingestor = *c.ingest.ingestor;
  h->Add(
      "upload-sessions", 360 * every,
      [&ingestor] {
        auto expired = ingestor.ExpireSessions();
        if (!expired.ok()) LOG(WARNING) << "expiring upload sessions: " << expired.status();
      },
      kLeaderOnly);
  // Sent pushes are kept for outbound.keep_sent_days, then go: the queue holds what is owed and
  // the recent past, and /metrics does not count the whole history at every refresh.
  const absl::Duration keep_sent = absl::Hours(24) * c.config.outbound().keep_sent_days();
  storage::OutboundStore& outbound = index.outbound();
  h->Add(
      "outbound-retention", absl::Hours(1),
      [&outbound, &clock, keep_sent] {
        constexpr int32_t kBatch = 1000;  // one short transaction at a time
        int64_t purged = 0;
        for (int batch = 0; batch < 100; ++batch) {
          auto n = outbound.PurgeSent(clock.Now() - keep_sent, kBatch);
          if (!n.ok()) {
            LOG(WARNING) << "purging sent outbound jobs: " << n.status();
            break;
          }
          purged += *n;
          if (*n < kBatch) break;
        }
        if (purged > 0) {
          LOG(INFO) << "purged " << purged << " outbound jobs sent more than "
                    << absl::FormatDuration(keep_sent) << " ago";
        }
      },
      kLeaderOnly);
  RefreshMetrics(metrics);  // so that the first scrape after a start does not read the history
  h->Start();
  return h;
}

//! DICOMweb on config.dicomweb.listen, when set.
absl::StatusOr<DicomWeb> StartDicomWeb(const rdg::v1::GatewayConfig& config, const Policy& policy,
                                       const Stores& stores, const Ingest& ingest,
                                       const Desks& desks, const Clock& clock) {
  DicomWeb d;
  if (config.dicomweb().listen().empty()) return d;
  storage::IndexStore& index = *stores.index;
  d.access = std::make_unique<dicomweb::StudyAccess>(
      dicomweb::StudyAccess::Stores{index.exams(), index.audit()}, *desks.reading, clock);
  signing::RevocationList* revocations = desks.revocations.get();
  RDG_ASSIGN_OR_RETURN(
      d.server,
      dicomweb::DicomWebServer::Start(
          config.dicomweb(), config.tls(),
          {*d.access, index.exams(), *stores.blob_files, *policy.directory,
           [revocations](absl::string_view pem) { return revocations->RevokedAt(pem).has_value(); },
           ingest.ingestor.get(), ingest.slots.get(), config.data_dir() + "/uploads",
           config.limits().max_object_bytes()}));
  return d;
}

//! The outbound queue's worker, started when any institution has a destination.
Outbound StartOutbound(const rdg::v1::GatewayConfig& config, const Policy& policy,
                       const Stores& stores, const Clock& clock) {
  Outbound o;
  auto destinations = outbound::Dispatcher::DestinationsOf(config);
  if (destinations.empty()) return o;
  storage::IndexStore& index = *stores.index;
  o.payloads = std::make_unique<IndexPayloads>(
      IndexPayloads::Stores{index.exams(), index.reports()}, *stores.blob_files, *policy.directory,
      config.platform_name(), config::DisplayTimeZone(config));
  o.sender =
      outbound::NetworkSender(absl::Seconds(config.outbound().timeout_seconds()), config.tls());
  outbound::Dispatcher::Options options;
  options.max_backoff = absl::Seconds(config.outbound().max_backoff_seconds());
  options.first_backoff = std::min(options.first_backoff, options.max_backoff);
  o.dispatcher = std::make_unique<outbound::Dispatcher>(index.outbound(), *stores.leadership,
                                                        std::move(destinations), *o.payloads,
                                                        *o.sender, clock, options);
  o.dispatcher->Start();
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const rdg::v1::GatewayConfig& config,
                                                        const Clock& clock) {
  auto c = std::make_unique<Components>();
  c->config = config;
  c->clock = &clock;
  c->policy = BuildPolicy(config);
  RDG_ASSIGN_OR_RETURN(c->stores, OpenStores(config, clock));
  RDG_ASSIGN_OR_RETURN(c->audit_export, StartAuditExport(config, c->stores, clock));
  RDG_ASSIGN_OR_RETURN(c->ingest, StartIngest(config, c->policy, c->stores, clock));
  RDG_ASSIGN_OR_RETURN(c->desks, BuildDesks(config, c->policy, c->stores, clock));
  BuildServices(config, c->policy, c->stores, c->ingest, c->desks, clock, c->serving);
  RDG_RETURN_IF_ERROR(StartServer(config, c->policy, c->stores, c->desks, clock, c->serving));
  RDG_ASSIGN_OR_RETURN(
      c->monitoring, StartMonitoring(config, c->policy, c->stores, c->ingest, c->desks, c->serving,
                                     c->audit_export.get(), clock));
  RDG_ASSIGN_OR_RETURN(c->dicomweb,
                       StartDicomWeb(config, c->policy, c->stores, c->ingest, c->desks, clock));
  c->outbound = StartOutbound(config, c->policy, c->stores, clock);
  c->housekeeper = StartHousekeeping(*c);
  return std::unique_ptr<Gateway>(new Gateway(std::move(c)));
}

Gateway::Gateway(std::unique_ptr<Components> parts) : parts_(std::move(parts)) {}

Gateway::~Gateway() { Shutdown(absl::Seconds(30)); }

int Gateway::port() const { return parts_->serving.port; }

int Gateway::dicomweb_port() const {
  return parts_->dicomweb.server ? parts_->dicomweb.server->port() : 0;
}

int Gateway::monitoring_port() const {
  return parts_->monitoring.server ? parts_->monitoring.server->port() : 0;
}

absl::Status Gateway::ReloadRevocations() { return parts_->desks.revocations->Reload(); }

void Gateway::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  parts_->housekeeper->Stop();
  if (parts_->outbound.dispatcher) parts_->outbound.dispatcher->Stop();
  parts_->monitoring.server.reset();
  parts_->dicomweb.server.reset();
  Serving& s = parts_->serving;
  // Watches never end by themselves: end them now (clients resume from their cursor), so that
  // the grace period is spent only on calls that finish, such as uploads committing.
  s.delivery->EndWatches();
  s.server->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  s.server->Wait();
  s.ingest_pool.reset();  // runs what reactors queued last (e.g. keeping uploads resumable)
  s.pool.reset();
  const absl::Status stop =
      parts_->stores.index->AppendAudit(ApplicationEvent("application_stop", parts_->clock->Now()));
  if (!stop.ok()) LOG(WARNING) << "auditing the stop: " << stop;
  // Checkpoints are the leader's (several gateways on one index would race to sign the same).
  if (parts_->stores.leadership->Leads()) {
    CheckpointAudit(*parts_->stores.index, *parts_->desks.receipts, *parts_->clock);
  }
}

}  // namespace rdg::api
