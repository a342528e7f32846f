#include "gateway/api/admin_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/api/call_support.h"
#include "gateway/api/convert.h"
#include "gateway/api/object_stream.h"
#include "gateway/auth/rbac.h"
#include "gateway/monitoring/turnaround.h"
#include "storage/base/digest.h"
#include "storage/base/random.h"
#include "storage/base/status_macros.h"
#include "storage/file_blob_store.h"
#include "storage/formats/text.h"
#include "storage/vocabulary_proto.h"

namespace rdg::api {
namespace {

//! Objects one BackupBlobs call may ask for.
constexpr int kMaxBackupBlobsPerCall = 64;

//! A reader that runs `done` when it is destroyed (the end of a backup's index stream).
class ReleasingReader final : public storage::BlobReader {
 public:
  ReleasingReader(std::unique_ptr<storage::BlobReader> inner, std::function<void()> done)
      : inner_(std::move(inner)), done_(std::move(done)) {}
  ~ReleasingReader() override { done_(); }
  int64_t Size() const override { return inner_->Size(); }
  absl::StatusOr<size_t> ReadAt(int64_t offset, char* buf, size_t n) const override {
    return inner_->ReadAt(offset, buf, n);
  }

 private:
  std::unique_ptr<storage::BlobReader> inner_;
  std::function<void()> done_;
};

void ToProto(const storage::AuditRecord& e, const config::InstitutionDirectory& directory,
             rdg::v1::AuditEntry& out) {
  out.set_seq(e.seq);
  *out.mutable_at() = ToTimestamp(e.at);
  out.set_institution(e.institution);
  out.set_institution_name(directory.Name(e.institution));
  out.set_user(e.user);
  out.set_role(storage::ToProto(e.role));
  out.set_action(e.action);
  out.set_exam_id(e.exam_id);
  out.set_detail(e.detail);
  out.set_outcome(e.outcome);
  out.set_patient_id(e.patient_id);
  out.set_peer(e.peer);
  out.set_subject(e.subject);
}

}  // namespace

absl::StatusOr<auth::Principal> AdminServiceImpl::Administrator(grpc::CallbackServerContext* ctx) {
  RDG_ASSIGN_OR_RETURN(auto principal, authenticator_.Authenticate(*ctx));
  RDG_RETURN_IF_ERROR(auth::Authorize(principal, auth::Permission::kAdminister));
  return principal;
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetQueues(grpc::CallbackServerContext* ctx,
                                                      const rdg::v1::QueuesRequest* request,
                                                      rdg::v1::QueuesResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    const absl::Time now = clock_.Now();
    RDG_ASSIGN_OR_RETURN(auto figures, stores_.worklist.ListQueueFigures(now));
    std::map<std::string, storage::QueueFigureRecord> by_queue;
    for (const auto& q : queues_) by_queue[q].queue = q;
    for (auto& f : figures) by_queue[f.queue] = std::move(f);  // also queues no longer configured
    for (const auto& [name, f] : by_queue) {
      rdg::v1::QueueFigures* out = response->add_queues();
      out->set_queue(name);
      out->set_queue_name(directory_.QueueName(name));
      out->set_depth(f.depth);
      out->set_claimed(f.claimed);
      out->set_overdue(f.overdue);
      if (f.oldest_waiting_since) {
        *out->mutable_oldest_waiting() = ToDurationProto(now - *f.oldest_waiting_since);
      }
    }
    return stores_.audit.AppendAudit(auth::AuditBy(principal, now, "admin_queues", "", ""));
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::QueryAudit(grpc::CallbackServerContext* ctx,
                                                       const rdg::v1::AuditRequest* request,
                                                       rdg::v1::AuditResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    storage::AuditQuery query;
    query.exam_id = request->exam_id();
    query.user = request->user();
    query.limit = request->limit() > 0 ? std::min(request->limit(), 10000) : 100;
    if (request->has_since()) query.since = FromTimestamp(request->since());
    RDG_ASSIGN_OR_RETURN(auto entries, stores_.audit.ListAudit(query));
    for (const auto& e : entries) ToProto(e, directory_, *response->add_entries());
    // Reading the audit log is itself audited.
    return stores_.audit.AppendAudit(
        auth::AuditBy(principal, clock_.Now(), "admin_audit", request->exam_id(),
                      request->user().empty() ? "" : absl::StrCat("user ", request->user())));
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ExportAudit(grpc::CallbackServerContext* ctx,
                                                        const rdg::v1::ExportAuditRequest* request,
                                                        rdg::v1::ExportAuditResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    const int64_t from = std::max<int64_t>(request->from_seq(), 1);
    const int32_t limit = request->limit() > 0 ? std::min(request->limit(), 5000) : 5000;
    RDG_ASSIGN_OR_RETURN(storage::AuditExportRecord page, stores_.audit.ExportAudit(from, limit));
    RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
        auth::AuditBy(principal, clock_.Now(), "admin_audit_export", "",
                      absl::StrCat("from ", from, ", ", page.records.size(), " records"))));
    for (const auto& e : page.records) {
      rdg::v1::AuditEntry& out = *response->add_entries();
      ToProto(e, directory_, out);
      out.set_prev_hash(e.prev_hash);
      out.set_hash(e.hash);
    }
    for (const auto& c : page.checkpoints) {
      rdg::v1::AuditCheckpoint& out = *response->add_checkpoints();
      out.set_seq(c.seq);
      out.set_hash(c.hash);
      *out.mutable_signed_at() = ToTimestamp(c.signed_at);
      out.set_statement(c.statement);
      out.set_signature(c.signature);
    }
    if (static_cast<int32_t>(page.records.size()) == limit) {
      response->set_next_seq(page.records.back().seq + 1);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetTurnaround(grpc::CallbackServerContext* ctx,
                                                          const rdg::v1::TurnaroundRequest* request,
                                                          rdg::v1::TurnaroundResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    const absl::Time now = clock_.Now();
    const absl::Time until = request->has_until() ? FromTimestamp(request->until()) : now;
    const absl::Time since =
        request->has_since() ? FromTimestamp(request->since()) : until - absl::Hours(24);
    if (since >= until) {
      return absl::InvalidArgumentError("the window is empty: since must come before until");
    }
    RDG_ASSIGN_OR_RETURN(auto stages, stores_.sla.ListStagesEnded(since, until));
    for (const auto& g : monitoring::ComputeTurnaround(stages, request->group_by(), directory_)) {
      rdg::v1::TurnaroundGroup* out = response->add_groups();
      out->set_key(g.key);
      switch (request->group_by()) {
        case rdg::v1::BY_QUEUE:
          out->set_name(directory_.QueueName(g.key));
          break;
        case rdg::v1::BY_EXAM_TYPE:
        case rdg::v1::BY_PRIORITY:
        case rdg::v1::TURNAROUND_GROUPING_UNSPECIFIED:
          out->set_name(g.key);
          break;
        default:  // an institution, or a county by its lead institution
          out->set_name(directory_.Name(g.key));
      }
      for (const auto& f : g.stages) {
        rdg::v1::StageFigures* s = out->add_stages();
        s->set_stage(storage::ToProto(f.stage));
        s->set_count(f.count);
        *s->mutable_p50() = ToDurationProto(f.p50);
        *s->mutable_p90() = ToDurationProto(f.p90);
        *s->mutable_p99() = ToDurationProto(f.p99);
        *s->mutable_max() = ToDurationProto(f.max);
        *s->mutable_sum() = ToDurationProto(f.sum);
        s->set_within_sla_share(f.WithinShare());
        s->set_with_target(f.with_target);
      }
    }
    return stores_.audit.AppendAudit(
        auth::AuditBy(principal, now, "admin_turnaround", "",
                      rdg::v1::TurnaroundGrouping_Name(request->group_by())));
  });
}

namespace {

void ToBreachProto(const storage::StageRecord& s, absl::Time now,
                   const config::InstitutionDirectory& directory, rdg::v1::Breach* out) {
  out->set_exam_id(s.exam_id);
  out->set_stage(storage::ToProto(s.stage));
  out->set_queue(s.queue);
  out->set_queue_name(directory.QueueName(s.queue));
  out->set_origin_name(directory.Name(s.origin_institution));
  out->set_priority(storage::ToProto(s.priority));
  out->set_exam_type(formats::ToValidUtf8(s.exam_type));  // from a device: may predate UTF-8
  out->set_origin_institution(s.origin_institution);
  *out->mutable_started_at() = ToTimestamp(s.started_at);
  *out->mutable_due_at() = ToTimestamp(s.due_at);
  if (s.breached_at) *out->mutable_detected_at() = ToTimestamp(*s.breached_at);
  *out->mutable_overrun() = ToDurationProto(s.Overrun(now));
  out->set_open(!s.ended_at);
}

}  // namespace

grpc::ServerUnaryReactor* AdminServiceImpl::ListBreaches(grpc::CallbackServerContext* ctx,
                                                         const rdg::v1::BreachesRequest* request,
                                                         rdg::v1::BreachesResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    const absl::Time now = clock_.Now();
    storage::BreachQuery query;
    query.open_only = request->open_only();
    if (request->has_since()) query.since = FromTimestamp(request->since());
    query.limit = request->limit() > 0 ? std::min(request->limit(), 100000) : 1000;
    RDG_ASSIGN_OR_RETURN(auto breaches, stores_.sla.ListBreaches(query));
    for (const auto& b : breaches) ToBreachProto(b, now, directory_, response->add_breaches());
    return stores_.audit.AppendAudit(
        auth::AuditBy(principal, now, "admin_breaches", "", query.open_only ? "open" : ""));
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListIdentityConflicts(
    grpc::CallbackServerContext* ctx, const rdg::v1::IdentityConflictsRequest* request,
    rdg::v1::IdentityConflictsResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    const absl::Time since =
        request->has_since() ? FromTimestamp(request->since()) : absl::InfinitePast();
    const int32_t limit = request->limit() > 0 ? std::min(request->limit(), 1000) : 100;
    RDG_ASSIGN_OR_RETURN(auto conflicts,
                         stores_.identity_conflicts.ListIdentityConflicts(since, limit));
    for (const auto& c : conflicts) {
      rdg::v1::IdentityConflict* out = response->add_conflicts();
      out->set_seq(c.seq);
      *out->mutable_detected_at() = ToTimestamp(c.detected_at);
      out->set_kind(storage::ToProto(c.kind));
      out->set_exam_id(c.exam_id);
      out->set_origin_institution(c.origin_institution);
      out->set_origin_name(directory_.Name(c.origin_institution));
      out->set_other_exam_id(c.other_exam_id);
      out->set_other_institution(c.other_institution);
      if (!c.other_institution.empty()) out->set_other_name(directory_.Name(c.other_institution));
      for (const auto& f : c.fields) out->add_fields(f);
      out->set_detail(formats::ToValidUtf8(c.detail));  // may quote an HL7 control id
    }
    return stores_.audit.AppendAudit(auth::AuditBy(principal, clock_.Now(),
                                                   "admin_identity_conflicts", "",
                                                   absl::StrCat(conflicts.size(), " listed")));
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetOutbound(grpc::CallbackServerContext* ctx,
                                                        const rdg::v1::OutboundRequest* request,
                                                        rdg::v1::OutboundResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    RDG_ASSIGN_OR_RETURN(auto summaries, stores_.outbound.SummarizeOutbound());
    std::map<std::string, rdg::v1::OutboundDestination> by_name;
    for (const outbound::Destination& d : destinations_) {
      rdg::v1::OutboundDestination& out = by_name[d.config.name()];
      out.set_name(d.config.name());
      out.set_institution(d.institution);
      out.set_system(d.config.has_dicom() ? "dicom" : "hl7");
      out.set_address(d.config.has_dicom() ? d.config.dicom().address() : d.config.hl7().address());
    }
    for (const storage::OutboundSummary& s : summaries) {
      rdg::v1::OutboundDestination& out = by_name[s.destination];
      out.set_name(s.destination);
      out.set_pending(s.pending);
      out.set_sent(s.sent);
      out.set_failed(s.failed);
      if (s.oldest_pending_since) {
        *out.mutable_oldest_pending_since() = ToTimestamp(*s.oldest_pending_since);
      }
      if (s.last_sent_at) *out.mutable_last_sent_at() = ToTimestamp(*s.last_sent_at);
      out.set_last_error(formats::ToValidUtf8(s.last_error));  // may quote a peer's answer
    }
    for (auto& [name, d] : by_name) *response->add_destinations() = std::move(d);
    if (!request->exam_id().empty()) {
      RDG_ASSIGN_OR_RETURN(auto jobs, stores_.outbound.ListJobs(request->exam_id()));
      for (const storage::OutboundJob& j : jobs) {
        rdg::v1::OutboundJob* out = response->add_jobs();
        out->set_job_id(j.job_id);
        out->set_destination(j.destination);
        out->set_kind(storage::OutboundKindName(j.kind));
        out->set_report_id(j.report_id);
        out->set_state(storage::OutboundStateName(j.state));
        out->set_attempts(j.attempts);
        *out->mutable_created_at() = ToTimestamp(j.created_at);
        if (j.state == storage::OutboundState::kPending) {
          *out->mutable_next_attempt_at() = ToTimestamp(j.next_attempt_at);
        }
        if (j.done_at) *out->mutable_done_at() = ToTimestamp(*j.done_at);
        out->set_detail(formats::ToValidUtf8(j.detail));
      }
    }
    return stores_.audit.AppendAudit(
        auth::AuditBy(principal, clock_.Now(), "admin_outbound", request->exam_id(), ""));
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RetryOutbound(
    grpc::CallbackServerContext* ctx, const rdg::v1::RetryOutboundRequest* request,
    rdg::v1::RetryOutboundResponse* response) {
  return RunUnary(ctx, pool_, *request, [this, ctx, request, response]() -> absl::Status {
    RDG_ASSIGN_OR_RETURN(auto principal, Administrator(ctx));
    RDG_ASSIGN_OR_RETURN(int64_t requeued,
                         stores_.outbound.RetryFailed(request->destination(), clock_.Now()));
    response->set_requeued(requeued);
    return stores_.audit.AppendAudit(auth::AuditBy(
        principal, clock_.Now(), "admin_outbound_retry", "",
        absl::StrCat(request->destination().empty() ? "every destination" : request->destination(),
                     ": ", requeued, " requeued")));
  });
}

absl::Status AdminServiceImpl::RoomForSnapshot() const {
  if (backup_.guard == nullptr || backup_.index_path.empty()) return absl::OkStatus();
  int64_t needed = 0;
  for (const char* suffix : {"", "-wal"}) {
    struct stat st {};
    if (::stat(absl::StrCat(backup_.index_path, suffix).c_str(), &st) == 0) needed += st.st_size;
  }
  RDG_ASSIGN_OR_RETURN(int64_t free, backup_.guard->FreeBytes());
  if (free - needed < backup_.guard->reserve_bytes()) {
    return absl::UnavailableError(
        absl::StrCat("no room for an index snapshot of about ", needed >> 20,
                     " MiB above the gateway's disk reserve; free space first"));
  }
  return absl::OkStatus();
}

absl::Status AdminServiceImpl::MayBackUp(const absl::StatusOr<auth::Principal>& who) const {
  if (!who.ok()) return who.status();
  RDG_RETURN_IF_ERROR(auth::Authorize(*who, auth::Permission::kAdminister));
  const std::string name = absl::StrCat(who->institution, "/", who->user);
  if (std::find(backup_.users.begin(), backup_.users.end(), name) == backup_.users.end() ||
      backup_.blobs == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("a backup copies every patient's data: ", name,
                     " is not listed in the gateway's backup_users"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<storage::ObjectRecord>> AdminServiceImpl::SnapshotIndex(
    const auth::Principal& who, std::shared_ptr<std::unique_ptr<storage::BlobReader>> reader) {
  // One snapshot at a time, and only with room for it above the disk reserve.
  if (snapshot_busy_->exchange(true)) {
    return absl::UnavailableError("another backup's index snapshot is in progress; try later");
  }
  auto busy = snapshot_busy_;
  auto release = [busy] { busy->store(false); };
  if (absl::Status room = RoomForSnapshot(); !room.ok()) {
    release();
    return room;
  }
  const std::string path =
      absl::StrCat(backup_.scratch_dir, "/.backup-", storage::RandomHex(8), ".sqlite");
  absl::StatusOr<int64_t> audit_seq = stores_.backup.SnapshotTo(path);
  absl::StatusOr<std::unique_ptr<storage::BlobReader>> opened =
      audit_seq.ok() ? storage::OpenFileReader(path) : audit_seq.status();
  // Unlinked at once: the open reader keeps the bytes until the stream ends, however it ends.
  ::unlink(path.c_str());
  if (!opened.ok()) {
    release();
    return opened.status();
  }
  // The snapshot counts as in progress until its reader (the stream) is gone.
  *opened = std::make_unique<ReleasingReader>(*std::move(opened), std::move(release));
  storage::Sha256 hasher;
  std::string buffer(1 << 20, '\0');
  for (int64_t offset = 0; offset < (*opened)->Size();) {
    RDG_ASSIGN_OR_RETURN(size_t n, (*opened)->ReadAt(offset, buffer.data(), buffer.size()));
    if (n == 0) return absl::DataLossError("the index snapshot is shorter than it was");
    hasher.Update(absl::string_view(buffer.data(), n));
    offset += static_cast<int64_t>(n);
  }
  storage::ObjectRecord snapshot;
  snapshot.sop_instance_uid = "index.sqlite";
  snapshot.sha256_hex = storage::ToHex(hasher.Finish());
  snapshot.size = (*opened)->Size();
  RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
      auth::AuditBy(who, clock_.Now(), "backup_index", "",
                    absl::StrCat("snapshot of ", snapshot.size, " bytes, sha256 ",
                                 snapshot.sha256_hex, ", audit log to record ", *audit_seq))));
  *reader = *std::move(opened);
  return std::vector<storage::ObjectRecord>{snapshot};
}

grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* AdminServiceImpl::BackupIndex(
    grpc::CallbackServerContext* ctx, const rdg::v1::BackupIndexRequest* /*request*/) {
  // The context is read here, on gRPC's thread; the snapshot is made on the pool.
  absl::StatusOr<auth::Principal> who = authenticator_.Authenticate(*ctx);
  const absl::Status may = MayBackUp(who);
  auto reader = std::make_shared<std::unique_ptr<storage::BlobReader>>();
  return new ObjectStreamReactor(
      pool_,
      [reader](
          const storage::ObjectRecord&) -> absl::StatusOr<std::unique_ptr<storage::BlobReader>> {
        if (*reader == nullptr) return absl::InternalError("no index snapshot");
        return std::move(*reader);
      },
      [this, who, may, reader]() -> absl::StatusOr<std::vector<storage::ObjectRecord>> {
        RDG_RETURN_IF_ERROR(may);
        return SnapshotIndex(*who, reader);
      });
}

grpc::ServerWriteReactor<rdg::v1::ObjectChunk>* AdminServiceImpl::BackupBlobs(
    grpc::CallbackServerContext* ctx, const rdg::v1::BackupBlobsRequest* request) {
  absl::StatusOr<auth::Principal> who = authenticator_.Authenticate(*ctx);
  absl::Status may = MayBackUp(who);
  if (may.ok()) may = CheckRequestLimits(*request);
  if (may.ok() && request->sha256_size() > kMaxBackupBlobsPerCall) {
    may = absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxBackupBlobsPerCall, " objects per BackupBlobs call"));
  }
  std::vector<std::string> wanted(request->sha256().begin(), request->sha256().end());
  const storage::BlobStore* blobs = backup_.blobs;
  return new ObjectStreamReactor(
      pool_,
      [blobs](
          const storage::ObjectRecord& o) -> absl::StatusOr<std::unique_ptr<storage::BlobReader>> {
        RDG_ASSIGN_OR_RETURN(storage::Digest digest, storage::DigestFromHexOrRaw(o.sha256_hex));
        return blobs->Open(digest);  // reached only once MayBackUp found a blob store
      },
      [this, who, may, wanted = std::move(wanted),
       blobs]() -> absl::StatusOr<std::vector<storage::ObjectRecord>> {
        RDG_RETURN_IF_ERROR(may);
        std::vector<storage::ObjectRecord> out;
        for (const std::string& hex : wanted) {
          RDG_ASSIGN_OR_RETURN(storage::Digest digest, storage::DigestFromHexOrRaw(hex));
          storage::ObjectRecord o;
          o.sha256_hex = storage::ToHex(digest);
          // Only what the index references: the backup never reads staging or stray files.
          RDG_ASSIGN_OR_RETURN(bool referenced, stores_.exams.IsBlobReferenced(o.sha256_hex));
          if (!referenced) {
            return absl::NotFoundError(absl::StrCat("no stored object has sha256 ", o.sha256_hex));
          }
          RDG_ASSIGN_OR_RETURN(auto reader, blobs->Open(digest));
          o.size = reader->Size();
          out.push_back(std::move(o));
        }
        std::vector<std::string> hashes;
        for (const storage::ObjectRecord& o : out) hashes.push_back(o.sha256_hex);
        RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(
            auth::AuditBy(*who, clock_.Now(), "backup_blobs", "",
                          absl::StrCat(out.size(), " objects: ", absl::StrJoin(hashes, " ")))));
        return out;
      });
}

}  // namespace rdg::api
