#include "gateway/ingest/ingestor.h"

#include <glog/logging.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "storage/base/random.h"
#include "storage/base/status_macros.h"
#include "storage/parsing/parsed_object.h"
#include "storage/vocabulary_proto.h"

namespace rdg::ingest {
namespace {

using rdg::v1::UploadStatus;
using storage::UploadSessionRecord;

std::string NewSessionId() { return "up-" + storage::RandomHex(16); }

//! Another stream holds the session (of this gateway, or of one sharing its staging dir).
absl::Status InUseError() {
  return absl::AbortedError("this upload is in use by another connection; retry in a few seconds");
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

//! Whether a failed commit may succeed later as it is (rather than being refused for its content
//! or the caller's request).
bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsInternal(status) || absl::IsAborted(status) ||
         absl::IsDeadlineExceeded(status) || absl::IsDataLoss(status);
}

std::string HumanBytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.1f GiB", n / double(int64_t{1} << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.1f MiB", n / double(1 << 20));
  return absl::StrCat(n, " bytes");
}

//! A size and the limit it passed, in units people read, exact where rounding would make them
//! look equal ("2.0 GiB; at most 2.0 GiB" says nothing).
std::pair<std::string, std::string> SizeAndLimit(int64_t size, int64_t limit) {
  std::string a = HumanBytes(size), b = HumanBytes(limit);
  if (a == b) return {absl::StrCat(size, " bytes"), absl::StrCat(limit, " bytes (", b, ")")};
  return {a, b};
}

//! Index rows of a parsed object from an upload session.
storage::NewObject ToNewObject(parsing::ParsedObject parsed, const UploadSessionRecord& session,
                               const storage::Digest& digest, absl::Time now, bool persisted) {
  storage::NewObject n;
  n.exam = std::move(parsed.exam);
  n.exam.origin_institution = session.institution;
  n.exam.priority = session.priority == storage::Priority::kUnspecified
                        ? storage::Priority::kRoutine
                        : session.priority;
  if (n.exam.critical)
    n.exam.priority = storage::Priority::kStat;  // a critical value is read first
  n.exam.state = storage::ExamState::kReceived;
  n.object = std::move(parsed.object);
  n.object.origin_institution = session.institution;
  n.object.kind = session.kind;
  n.object.size = session.size;
  n.object.sha256_hex = storage::ToHex(digest);
  n.object.received_at = now;
  n.lab_results = std::move(parsed.lab_results);
  for (auto& r : n.lab_results) r.origin_institution = session.institution;
  if (persisted) n.session_id = session.session_id;
  n.actor = session.user;
  return n;
}

//! The HL7 ACK's own control id (MSH-10, at most 20 characters in HL7 2.3/2.4) from a random
//! hex string (an upload session id's, or the message's digest).
std::string AckControlId(absl::string_view hex) { return absl::StrCat("RDG", hex.substr(0, 17)); }

//! The routing decision for the exam this object would create.
storage::RoutingRecord RouteExam(const Ingestor::Options& options, const storage::ExamRecord& exam,
                                 rdg::v1::Priority requested, absl::Time received) {
  storage::RoutingRecord r;
  if (options.router == nullptr) return r;
  routing::RoutingDecision d =
      options.router->Route({exam.origin_institution, exam.exam_type, exam.body_part, requested});
  r.queue = d.queue;
  r.priority = storage::FromProto(d.priority);
  r.detail = d.fallback ? "no routing rule matched: fallback queue " + d.queue
                        : "rule " + d.rule + " -> " + d.queue;
  if (options.sla != nullptr) {
    r.sla_due_at = options.sla->FinalDue(exam.exam_type, d.priority, received);
    r.claim_due_at = options.sla->ClaimDue(exam.exam_type, d.priority, received);
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// UploadHandle

UploadHandle::UploadHandle(Ingestor& owner, UploadSessionRecord record, bool persisted)
    : owner_(owner), record_(std::move(record)), persisted_(persisted) {}

UploadHandle::~UploadHandle() {
  if (attached_) Detach();
}

absl::Status UploadHandle::OpenStaging() {
  // Held (flock) while open: a gateway sharing the staging dir finds it in use.
  auto file = owner_.staging_.OpenForAppend(record_.session_id, true);
  if (absl::IsAborted(file.status())) return InUseError();
  RDG_RETURN_IF_ERROR(file.status());
  file_ = *std::move(file);
  RDG_ASSIGN_OR_RETURN(int64_t staged, file_->Size());
  if (staged > record_.size) {
    // Cannot happen through this API; repair rather than trust a corrupted staging file.
    staged = 0;
    RDG_RETURN_IF_ERROR(file_->Truncate(0));
  }
  offset_ = staged;
  if (staged > 0) {
    // Resuming: rebuild the running digest from the bytes already staged.
    RDG_ASSIGN_OR_RETURN(auto reader, storage::File::OpenForRead(file_->path()));
    std::string buf(1 << 20, '\0');
    for (int64_t pos = 0; pos < staged;) {
      RDG_ASSIGN_OR_RETURN(
          size_t n, reader.ReadAt(pos, buf.data(), std::min<int64_t>(buf.size(), staged - pos)));
      if (n == 0) break;
      hasher_.Update(absl::string_view(buf.data(), n));
      pos += static_cast<int64_t>(n);
    }
  }
  return absl::OkStatus();
}

absl::Status UploadHandle::Append(int64_t offset, absl::string_view data) {
  if (offset < 0) return absl::InvalidArgumentError("chunk offset must not be negative");
  if (offset > offset_) {
    return absl::FailedPreconditionError(
        absl::StrCat("chunk starts at byte ", offset, " but the session has ", offset_,
                     " bytes; resume from the committed offset ", offset_));
  }
  const int64_t skip = std::min<int64_t>(offset_ - offset, static_cast<int64_t>(data.size()));
  data.remove_prefix(static_cast<size_t>(skip));
  if (data.empty()) return absl::OkStatus();
  if (offset_ + static_cast<int64_t>(data.size()) > record_.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk runs past the declared object size of ", record_.size, " bytes"));
  }
  RDG_RETURN_IF_ERROR(file_->Append(data));
  hasher_.Update(data);
  offset_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

UploadStatus UploadHandle::Detach() {
  attached_ = false;
  if (file_.has_value()) {
    absl::Status s = file_->Sync();
    if (s.ok() && !persisted_) {
      record_.updated_at = owner_.clock_.Now();
      s = owner_.PersistSession(record_);
      persisted_ = s.ok();
      // Not kept for resume: its bytes go too.
      if (!persisted_) s.Update(owner_.staging_.Remove(record_.session_id));
    } else if (s.ok()) {
      s = owner_.stores_.sessions.TouchSession(record_.session_id, owner_.clock_.Now());
    }
    if (!s.ok()) LOG(WARNING) << "upload " << record_.session_id << " not kept for resume: " << s;
    file_.reset();
  }
  owner_.Release(record_.session_id);
  return owner_.StatusOf(record_, persisted_ ? offset_ : 0);
}

void UploadHandle::Discard() {
  attached_ = false;
  // Removed while still held: a gateway sharing the staging dir never finds it free first.
  if (auto s = owner_.staging_.Remove(record_.session_id); !s.ok()) LOG(WARNING) << s;
  file_.reset();
  if (persisted_) {
    if (auto s = owner_.stores_.sessions.DeleteSession(record_.session_id); !s.ok())
      LOG(WARNING) << s;
  }
  owner_.Release(record_.session_id);
}

absl::StatusOr<UploadStatus> UploadHandle::Commit(absl::string_view expected_study) {
  if (offset_ != record_.size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot commit: ", offset_, " of ", record_.size, " bytes received; send the rest first"));
  }
  const storage::Digest digest = hasher_.Finish();
  if (storage::ToHex(digest) != record_.sha256_hex) {
    Discard();
    owner_.counters_.refused.fetch_add(1, std::memory_order_relaxed);
    return absl::InvalidArgumentError(
        "the bytes received do not match the SHA-256 declared when the upload was opened; the "
        "upload was discarded, send the file again");
  }
  absl::StatusOr<UploadStatus> result = owner_.CommitStaged(*this, digest, expected_study);
  if (attached_ && !result.ok() && IsTransient(result.status())) {
    // A full disk, a busy index, a parser restart: keep the bytes and the session so that the
    // client resumes (from the complete offset) instead of sending everything again.
    Detach();
    if (persisted_) {
      return absl::UnavailableError(absl::StrCat(
          result.status().message(),
          "; the upload is kept: retry shortly to resume it (nothing needs to be sent again)"));
    }
    // The session could not be kept either (the same full disk): nothing of it stays.
    if (auto s = owner_.staging_.Remove(record_.session_id); !s.ok()) LOG(WARNING) << s;
    return absl::UnavailableError(absl::StrCat(result.status().message(), "; retry shortly"));
  }
  if (attached_) Discard();  // rejected: leave no trace
  Ingestor::Counters& counters = owner_.counters_;
  if (!result.ok()) {
    counters.refused.fetch_add(1, std::memory_order_relaxed);
  } else if (result->committed().duplicate()) {
    counters.duplicates.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters.stored.fetch_add(1, std::memory_order_relaxed);
    counters.bytes_stored.fetch_add(record_.size, std::memory_order_relaxed);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Ingestor

Ingestor::Ingestor(const Options& options, Stores stores, storage::BlobStore& blobs,
                   storage::StagingArea staging, IndexCommitter& committer, const Clock& clock)
    : options_(options),
      stores_(stores),
      blobs_(blobs),
      staging_(std::move(staging)),
      committer_(committer),
      clock_(clock) {}

absl::Status Ingestor::Recover() {
  RDG_ASSIGN_OR_RETURN(int stray, staging_.RemoveStrayFiles());
  RDG_ASSIGN_OR_RETURN(auto sessions, stores_.sessions.ListSessions());
  RDG_ASSIGN_OR_RETURN(auto staged, staging_.ListSessions());
  absl::flat_hash_set<std::string> known;
  for (const auto& s : sessions) known.insert(s.session_id);
  int orphans = 0;
  for (const auto& id : staged) {
    if (known.contains(id)) continue;
    // One being written by another gateway on the same staging dir is not an orphan (its
    // session may not be persisted yet).
    RDG_ASSIGN_OR_RETURN(bool removed, staging_.RemoveIfFree(id));
    if (removed) ++orphans;
  }
  RDG_ASSIGN_OR_RETURN(int expired, ExpireSessions());
  LOG(INFO) << "ingest recovery: " << sessions.size() << " resumable upload sessions, removed "
            << orphans << " orphaned part files, " << stray << " stray files, " << expired
            << " expired sessions";
  return absl::OkStatus();
}

absl::StatusOr<int> Ingestor::ExpireSessions() {
  RDG_ASSIGN_OR_RETURN(auto sessions, stores_.sessions.ListSessions());
  int expired = 0;
  const absl::Time now = clock_.Now();
  for (const auto& s : sessions) {
    if (ExpiresAt(s) > now) continue;
    {
      // Held like an attached session while it is removed, so that no stream attaches to it
      // between the check and the delete.
      absl::MutexLock lock(&mu_);
      if (!attached_.insert(s.session_id).second) continue;
    }
    // A stream of another gateway on the same staging dir may hold it: left to the next round.
    absl::StatusOr<bool> removed = staging_.RemoveIfFree(s.session_id);
    absl::Status deleted = removed.ok() ? absl::OkStatus() : removed.status();
    if (removed.ok() && *removed) deleted = stores_.sessions.DeleteSession(s.session_id);
    Release(s.session_id);
    RDG_RETURN_IF_ERROR(deleted);
    if (*removed) ++expired;
  }
  return expired;
}

absl::Status Ingestor::TooManySessions() const {
  // Passes as uploads finish or expire: UNAVAILABLE, so clients retry rather than give up.
  return absl::UnavailableError(absl::StrCat(
      "your institution has ", options_.limits.max_open_uploads(),
      " unfinished uploads, the limit (limits.max_open_uploads): retry later, or finish them, or "
      "list and abort them with `rdg-clinic uploads`"));
}

absl::Status Ingestor::PersistSession(const UploadSessionRecord& record) {
  absl::Status s = stores_.sessions.CreateSession(record, options_.limits.max_open_uploads());
  if (absl::IsResourceExhausted(s)) return TooManySessions();
  return s;
}

absl::Time Ingestor::ExpiresAt(const UploadSessionRecord& record) const {
  return record.updated_at + absl::Seconds(options_.limits.upload_ttl_seconds());
}

UploadStatus Ingestor::StatusOf(const UploadSessionRecord& record, int64_t offset) const {
  UploadStatus st;
  st.set_session_id(record.session_id);
  st.set_state(rdg::v1::OPEN);
  st.set_committed_offset(offset);
  st.set_size(record.size);
  *st.mutable_expires_at() = ToProto(ExpiresAt(record));
  return st;
}

absl::Status Ingestor::ValidateOpen(const rdg::v1::OpenUploadRequest& r) const {
  if (r.kind() != rdg::v1::DICOM && r.kind() != rdg::v1::HL7V2_LAB) {
    const std::string name = rdg::v1::ObjectKind_Name(r.kind());
    return absl::InvalidArgumentError(absl::StrCat(
        "object kind ", name.empty() ? absl::StrCat(static_cast<int>(r.kind())) : name,
        " is not accepted by this gateway; upload DICOM files (kind DICOM) or HL7 v2 lab "
        "messages (kind HL7V2_LAB)"));
  }
  if (r.kind() == rdg::v1::HL7V2_LAB && r.size() > options_.limits.max_lab_message_bytes()) {
    const auto [size, limit] = SizeAndLimit(r.size(), options_.limits.max_lab_message_bytes());
    return absl::ResourceExhaustedError(absl::StrCat(
        "the lab message is ", size, "; this gateway accepts HL7 messages of at most ", limit,
        " (limits.max_lab_message_bytes). Send one ORU^R01 message per upload"));
  }
  if (r.size() <= 0) return absl::InvalidArgumentError("the object is empty: nothing to upload");
  if (r.size() > options_.limits.max_object_bytes()) {
    const auto [size, limit] = SizeAndLimit(r.size(), options_.limits.max_object_bytes());
    return absl::ResourceExhaustedError(
        absl::StrCat("the object is ", size, "; this gateway accepts at most ", limit,
                     " per object (limits.max_object_bytes). Ask the platform administrator"));
  }
  if (r.sha256().size() != 32) {
    return absl::InvalidArgumentError("sha256 must be the 32-byte SHA-256 of the whole object");
  }
  return absl::OkStatus();
}

absl::StatusOr<Ingestor::Found> Ingestor::FindOrCreate(const auth::Principal& principal,
                                                       const rdg::v1::OpenUploadRequest& request) {
  RDG_RETURN_IF_ERROR(ValidateOpen(request));
  RDG_ASSIGN_OR_RETURN(storage::Digest digest, storage::DigestFromHexOrRaw(request.sha256()));
  const std::string hex = storage::ToHex(digest);
  Found found;
  RDG_ASSIGN_OR_RETURN(auto stored, stores_.exams.FindObjectByContent(principal.institution, hex));
  if (stored.has_value() && stored->size == request.size()) {
    UploadStatus st;
    st.set_state(rdg::v1::COMMITTED);
    st.set_committed_offset(request.size());
    st.set_size(request.size());
    auto* c = st.mutable_committed();
    c->set_exam_id(stored->exam_id);
    c->set_sop_instance_uid(stored->sop_instance_uid);
    c->set_duplicate(true);
    RDG_ASSIGN_OR_RETURN(auto exam, stores_.exams.GetExam(stored->exam_id));
    if (exam.has_value()) {
      c->set_study_instance_uid(exam->study_instance_uid);
      c->set_exam_instance_count(exam->instance_count);
    }
    if (request.kind() == rdg::v1::HL7V2_LAB) {
      // The lab system still expects its ACK for a message it sends again.
      RDG_ASSIGN_OR_RETURN(*st.mutable_hl7_ack(), AckForStored(digest, stored->size));
    }
    // Answered from what is stored: the upload is audited here, not in a commit.
    RDG_RETURN_IF_ERROR(stores_.audit.AppendAudit(auth::AuditBy(
        principal, clock_.Now(), "upload", stored->exam_id,
        absl::StrCat(rdg::v1::ObjectKind_Name(request.kind()), " ", stored->sop_instance_uid, ", ",
                     request.size(), " bytes (already stored)"))));
    found.already_stored = std::move(st);
    return found;
  }
  RDG_ASSIGN_OR_RETURN(auto existing,
                       stores_.sessions.FindSession(principal.institution, hex, request.size()));
  if (existing.has_value()) {
    found.record = *std::move(existing);
    found.persisted = true;
    return found;
  }
  RDG_RETURN_IF_ERROR(AdmitBytes());
  // An early, friendly refusal; PersistSession is the atomic check.
  RDG_ASSIGN_OR_RETURN(int open, stores_.sessions.CountSessions(principal.institution));
  if (open >= options_.limits.max_open_uploads()) return TooManySessions();
  auto& r = found.record;
  r.session_id = NewSessionId();
  r.institution = principal.institution;
  r.user = principal.user;
  r.kind = storage::FromProto(request.kind());
  r.size = request.size();
  r.sha256_hex = hex;
  r.priority = storage::FromProto(request.priority());
  r.client_ref = request.client_ref().substr(0, 256);
  r.created_at = r.updated_at = clock_.Now();
  return found;
}

absl::StatusOr<UploadStatus> Ingestor::Open(const auth::Principal& principal,
                                            const rdg::v1::OpenUploadRequest& request,
                                            bool persist) {
  RDG_ASSIGN_OR_RETURN(Found found, FindOrCreate(principal, request));
  if (found.already_stored) return *found.already_stored;
  if (!found.persisted && persist) RDG_RETURN_IF_ERROR(PersistSession(found.record));
  RDG_ASSIGN_OR_RETURN(int64_t staged, staging_.StagedBytes(found.record.session_id));
  UploadStatus st = StatusOf(found.record, staged);
  st.set_in_use(InUse(found.record.session_id));
  return st;
}

absl::StatusOr<Ingestor::Attachment> Ingestor::Attach(const auth::Principal& principal,
                                                      const rdg::v1::UploadRequest& first) {
  Attachment attachment;
  if (first.has_open()) {
    RDG_ASSIGN_OR_RETURN(Found found, FindOrCreate(principal, first.open()));
    if (found.already_stored) {
      attachment.already_stored = std::move(found.already_stored);
      return attachment;
    }
    RDG_ASSIGN_OR_RETURN(attachment.handle, Hold(std::move(found.record), found.persisted));
    attachment.handle->uploader_ = principal;
    return attachment;
  }
  if (first.session_id().empty()) {
    return absl::InvalidArgumentError(
        "the first message of an upload must carry `open` or `session_id`");
  }
  RDG_ASSIGN_OR_RETURN(auto record, LoadSession(principal, first.session_id()));
  RDG_ASSIGN_OR_RETURN(attachment.handle, Hold(std::move(record), true));
  attachment.handle->uploader_ = principal;
  return attachment;
}

absl::Status Ingestor::AdmitBytes() const {
  return options_.storage_guard != nullptr ? options_.storage_guard->AdmitUpload()
                                           : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<UploadHandle>> Ingestor::Hold(UploadSessionRecord record,
                                                             bool persisted) {
  RDG_RETURN_IF_ERROR(AdmitBytes());
  {
    absl::MutexLock lock(&mu_);
    if (!attached_.insert(record.session_id).second) return InUseError();
  }
  if (persisted) {
    // Read again now that it is held: expiry (which holds a session while it removes it) may
    // have removed it since the caller read it.
    auto current = stores_.sessions.GetSession(record.session_id);
    if (!current.ok() || !current->has_value()) {
      Release(record.session_id);
      if (!current.ok()) return current.status();
      return absl::NotFoundError(absl::StrCat("no open upload ", record.session_id,
                                              " for your institution (it expired); start the "
                                              "upload again"));
    }
    record = **std::move(current);
  }
  auto handle =
      std::unique_ptr<UploadHandle>(new UploadHandle(*this, std::move(record), persisted));
  if (auto s = handle->OpenStaging(); !s.ok()) {
    handle->attached_ = false;
    Release(handle->session_id());
    return s;
  }
  return handle;
}

void Ingestor::Release(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  attached_.erase(session_id);
}

absl::StatusOr<UploadSessionRecord> Ingestor::LoadSession(const auth::Principal& principal,
                                                          const std::string& session_id) {
  RDG_ASSIGN_OR_RETURN(auto record, stores_.sessions.GetSession(session_id));
  // A session of another institution is reported exactly like a missing one.
  if (!record.has_value() || record->institution != principal.institution) {
    return absl::NotFoundError(absl::StrCat("no open upload ", session_id,
                                            " for your institution (it was committed, aborted or "
                                            "expired); start the upload again"));
  }
  return *std::move(record);
}

absl::StatusOr<UploadStatus> Ingestor::Status(const auth::Principal& principal,
                                              const std::string& session_id) {
  RDG_ASSIGN_OR_RETURN(auto record, LoadSession(principal, session_id));
  RDG_ASSIGN_OR_RETURN(int64_t staged, staging_.StagedBytes(session_id));
  UploadStatus st = StatusOf(record, staged);
  st.set_in_use(InUse(session_id));
  return st;
}

bool Ingestor::InUse(const std::string& session_id) {
  {
    absl::MutexLock lock(&mu_);
    if (attached_.contains(session_id)) return true;
  }
  return staging_.IsHeld(session_id);  // by a stream of a gateway sharing the staging dir
}

absl::StatusOr<UploadStatus> Ingestor::Abort(const auth::Principal& principal,
                                             const std::string& session_id) {
  RDG_ASSIGN_OR_RETURN(auto record, LoadSession(principal, session_id));
  RDG_ASSIGN_OR_RETURN(auto handle, Hold(std::move(record), true));
  UploadStatus st = StatusOf(handle->record_, 0);
  st.set_state(rdg::v1::ABORTED);
  handle->Discard();
  return st;
}

absl::StatusOr<rdg::v1::ListUploadsResponse> Ingestor::List(const auth::Principal& principal,
                                                            int page_size,
                                                            const std::string& page_token) {
  std::optional<storage::SessionCursor> after;
  if (!page_token.empty()) {
    // "<created_at in Unix µs>.<session id>"
    const std::pair<std::string, std::string> parts =
        absl::StrSplit(page_token, absl::MaxSplits('.', 1));
    int64_t micros = 0;
    if (!absl::SimpleAtoi(parts.first, &micros) || parts.second.empty()) {
      return absl::InvalidArgumentError("page_token is not one this gateway issued");
    }
    after = storage::SessionCursor{absl::FromUnixMicros(micros), parts.second};
  }
  const int limit = page_size > 0 ? std::min(page_size, 1000) : 100;
  RDG_ASSIGN_OR_RETURN(auto sessions,
                       stores_.sessions.ListSessionsOf(principal.institution, after, limit));
  rdg::v1::ListUploadsResponse response;
  for (const auto& s : sessions) {
    rdg::v1::UploadSummary* summary = response.add_uploads();
    RDG_ASSIGN_OR_RETURN(int64_t staged, staging_.StagedBytes(s.session_id));
    *summary->mutable_status() = StatusOf(s, staged);
    summary->mutable_status()->set_in_use(InUse(s.session_id));
    summary->set_kind(storage::ToProto(s.kind));
    summary->set_client_ref(s.client_ref);
    summary->set_user(s.user);
    *summary->mutable_created_at() = ToProto(s.created_at);
    *summary->mutable_updated_at() = ToProto(s.updated_at);
  }
  if (static_cast<int>(sessions.size()) == limit) {
    response.set_next_page_token(absl::StrCat(absl::ToUnixMicros(sessions.back().created_at), ".",
                                              sessions.back().session_id));
  }
  return response;
}

absl::StatusOr<rdg::v1::Hl7Acknowledgement> Ingestor::AckForStored(const storage::Digest& digest,
                                                                   int64_t size) const {
  RDG_ASSIGN_OR_RETURN(auto reader, blobs_.Open(digest));
  std::string bytes(static_cast<size_t>(size), '\0');
  for (int64_t pos = 0; pos < size;) {
    RDG_ASSIGN_OR_RETURN(size_t n, reader->ReadAt(pos, bytes.data() + pos, size - pos));
    if (n == 0) return absl::DataLossError("a stored lab message is shorter than indexed");
    pos += static_cast<int64_t>(n);
  }
  formats::LabParseOutcome parsed = formats::ParseLabMessage(bytes);
  return parsing::MakeAck(parsed.header, formats::Hl7AckCode::kAccept, nullptr, clock_.Now(),
                          AckControlId(storage::ToHex(digest)));
}

absl::StatusOr<parsing::ParsedObject> Ingestor::ParseStaged(const UploadSessionRecord& session,
                                                            const std::string& path) const {
  return parser_.Parse({storage::ToProto(session.kind), path, session.size, clock_.Now(),
                        AckControlId(absl::string_view(session.session_id).substr(3))});
}

absl::Status Ingestor::RefuseChangedObject(
    const std::string& uid, const std::optional<formats::Hl7Header>& hl7,
    const std::function<rdg::v1::Hl7Acknowledgement(formats::Hl7AckCode,
                                                    const formats::Hl7Rejection*)>& ack) {
  if (hl7.has_value()) {
    formats::Hl7Rejection why{formats::Hl7AckCode::kError, "205", "MSH^1^10",
                              "message control ID already used for a different message"};
    return parsing::AttachAck(
        absl::AlreadyExistsError(
            absl::StrCat("HL7 message control ID ", hl7->control_id,
                         " is already stored with different content; the stored message was "
                         "kept. Send corrected results with a new control ID")),
        ack(formats::Hl7AckCode::kError, &why));
  }
  return storage::ChangedObjectError(uid);
}

UploadStatus Ingestor::CommittedStatus(const UploadSessionRecord& session,
                                       const storage::CommitOutcome& outcome,
                                       const std::string& uid, const std::string& study_uid,
                                       const std::string& text_notes) {
  UploadStatus st;
  st.set_session_id(session.session_id);
  st.set_state(rdg::v1::COMMITTED);
  st.set_committed_offset(session.size);
  st.set_size(session.size);
  auto* c = st.mutable_committed();
  c->set_exam_id(outcome.exam_id);
  c->set_sop_instance_uid(uid);
  c->set_study_instance_uid(study_uid);
  c->set_duplicate(outcome.duplicate);
  c->set_exam_instance_count(outcome.exam_instance_count);
  c->set_text_notes(text_notes);
  return st;
}

absl::StatusOr<storage::CommitOutcome> Ingestor::Store(const UploadSessionRecord& session,
                                                       const std::string& path,
                                                       const storage::Digest& digest, bool stored,
                                                       storage::NewObject item) {
  if (stored) return committer_.Commit(std::move(item));  // duplicate: only the session row goes
  Pin(session.sha256_hex);
  // The blob is made durable in the same group commit as the rows, before them.
  absl::StatusOr<storage::CommitOutcome> outcome =
      committer_.Commit(std::move(item), storage::BlobStore::Adoption{path, digest});
  // Refused, or the same HL7 message stored meanwhile from other bytes: this blob is unused.
  UnpinAndCollect(session.sha256_hex, digest, !outcome.ok() || outcome->duplicate);
  return outcome;
}

void Ingestor::AfterCommit(UploadHandle& handle, const storage::CommitOutcome& outcome,
                           storage::ExamRecord exam) {
  if (outcome.new_exam) {
    // Listed for the administrators; the object is stored whatever this finds.
    exam.exam_id = outcome.exam_id;
    if (auto s = linker_.ReviewNewExam(exam); !s.ok()) {
      LOG(WARNING) << "exam " << outcome.exam_id << ": identity review failed: " << s;
    }
  }
  handle.attached_ = false;
  // Indexed: the staged name goes (the blob store holds its own link to the bytes), while it
  // is still held, so that no gateway sharing the staging dir resumes it in between.
  const std::string& session_id = handle.record_.session_id;
  if (auto s = staging_.Remove(session_id); !s.ok()) LOG(WARNING) << s;
  handle.file_.reset();
  Release(session_id);
}

absl::StatusOr<UploadStatus> Ingestor::CommitStaged(UploadHandle& handle,
                                                    const storage::Digest& digest,
                                                    absl::string_view expected_study) {
  const UploadSessionRecord& session = handle.record_;
  const std::string path = staging_.PathOf(session.session_id);
  RDG_ASSIGN_OR_RETURN(parsing::ParsedObject parsed, ParseStaged(session, path));
  const std::optional<formats::Hl7Header> hl7 = parsed.hl7_header;
  auto ack = [&](formats::Hl7AckCode code, const formats::Hl7Rejection* why) {
    return parsing::MakeAck(hl7, code, why, clock_.Now(),
                            AckControlId(absl::string_view(session.session_id).substr(3)));
  };

  // Fast answers before touching the blob store: duplicate or conflicting object identity.
  const std::string uid = parsed.object.sop_instance_uid;
  const std::string study_uid = parsed.exam.study_instance_uid;
  const std::string text_notes = parsed.object.text_notes;
  if (!expected_study.empty() && study_uid != expected_study) {
    return absl::FailedPreconditionError(
        absl::StrCat("the instance belongs to study ", study_uid, ", not to study ", expected_study,
                     " that the request named; it was not stored"));
  }
  RDG_ASSIGN_OR_RETURN(auto existing, stores_.exams.FindObject(session.institution, uid));
  storage::NewObject item =
      ToNewObject(std::move(parsed), session, digest, clock_.Now(), handle.persisted_);
  // The clinic's priority, else the rule's default; a critical value is always STAT.
  const rdg::v1::Priority requested =
      item.exam.critical ? rdg::v1::STAT : storage::ToProto(session.priority);
  item.routing = RouteExam(options_, item.exam, requested, item.object.received_at);
  item.audit = auth::AuditBy(
      handle.uploader_, item.object.received_at, "upload", "",
      absl::StrCat(storage::Name(session.kind), " ", uid, ", ", session.size, " bytes"));
  // An HL7 message re-sent with other line ends or framing is the same message (same segments).
  const bool same_message = hl7.has_value() && existing.has_value() &&
                            !existing->content_key.empty() &&
                            existing->content_key == item.object.content_key;
  if (existing.has_value() && existing->sha256_hex != session.sha256_hex && !same_message) {
    return RefuseChangedObject(uid, hl7, ack);
  }
  // One exam, one patient: an object whose patient is not its exam's is refused in the commit's
  // transaction (a concurrent upload cannot slip in between the check and the join).
  std::optional<storage::ExamRecord> refused_by;
  std::vector<std::string> refused_fields;
  const storage::PatientRecord incoming = item.exam.patient;
  item.check_join = [&](const storage::ExamRecord& joined) {
    refused_by.reset();  // a transaction run again asks again
    refused_fields =
        identity::Disagreements(joined.patient, incoming, identity::Strictness::kSameExam);
    if (refused_fields.empty()) return absl::OkStatus();
    refused_by = joined;
    return absl::AlreadyExistsError("identity conflict");  // replaced below, said for people
  };
  const storage::ExamRecord new_exam = item.exam;
  absl::StatusOr<storage::CommitOutcome> outcome =
      Store(session, path, digest, existing.has_value(), std::move(item));
  if (!outcome.ok() && refused_by.has_value()) {
    return RefuseOtherPatient(*refused_by, std::move(refused_fields), uid, hl7, ack);
  }
  if (!outcome.ok()) return outcome.status();
  AfterCommit(handle, *outcome, new_exam);

  UploadStatus st = CommittedStatus(session, *outcome, uid, study_uid, text_notes);
  if (!text_notes.empty() && !outcome->duplicate) {
    LOG(INFO) << "exam " << outcome->exam_id << ": " << text_notes;  // says how, never what
  }
  if (hl7.has_value()) *st.mutable_hl7_ack() = ack(formats::Hl7AckCode::kAccept, nullptr);
  return st;
}

absl::Status Ingestor::RefuseOtherPatient(
    const storage::ExamRecord& exam, std::vector<std::string> fields, const std::string& uid,
    const std::optional<formats::Hl7Header>& hl7,
    const std::function<rdg::v1::Hl7Acknowledgement(formats::Hl7AckCode,
                                                    const formats::Hl7Rejection*)>& ack) {
  const std::string what = absl::StrJoin(fields, ", ");
  const bool lab = hl7.has_value();
  if (auto s =
          linker_.RecordRefusedJoin(exam,
                                    lab ? storage::IdentityConflictKind::kOrderOfAnotherPatient
                                        : storage::IdentityConflictKind::kStudyOfAnotherPatient,
                                    std::move(fields),
                                    lab ? absl::StrCat("HL7 message ", hl7->control_id, " refused")
                                        : absl::StrCat("SOP Instance UID ", uid, " refused"));
      !s.ok()) {
    LOG(WARNING) << "exam " << exam.exam_id << ": cannot list the identity conflict: " << s;
  }
  if (lab) {
    const std::string reason =
        absl::StrCat("order ", exam.accession_number, " belongs to another patient (", what,
                     " differ); results are never merged across patients");
    formats::Hl7Rejection why{formats::Hl7AckCode::kError, "205", "PID^1^3", reason};
    return parsing::AttachAck(
        absl::AlreadyExistsError(
            absl::StrCat("HL7 message ", hl7->control_id, " refused: ", reason,
                         ". Check the patient and the order number in the LIS and send again")),
        ack(formats::Hl7AckCode::kError, &why));
  }
  return absl::AlreadyExistsError(
      absl::StrCat("Study Instance UID ", exam.study_instance_uid, " belongs to another patient (",
                   what, " differ from exam ", exam.exam_id,
                   "); the object was not stored. Check the patient on "
                   "the modality, or give this study a new Study Instance UID"));
}

void Ingestor::Pin(const std::string& sha256_hex) {
  absl::MutexLock lock(&pins_mu_);
  ++pins_[sha256_hex];
}

void Ingestor::UnpinAndCollect(const std::string& sha256_hex, const storage::Digest& digest,
                               bool maybe_unreferenced) {
  absl::MutexLock lock(&pins_mu_);
  if (--pins_[sha256_hex] == 0) pins_.erase(sha256_hex);
  if (!maybe_unreferenced || pins_.contains(sha256_hex)) return;
  // The index refused the object: drop its blob unless another object uses the same bytes or
  // an upload on another gateway sharing the store holds it on the way to its row.
  auto removed =
      blobs_.RemoveUnreferenced(digest, [&] { return stores_.exams.IsBlobReferenced(sha256_hex); });
  if (!removed.ok()) LOG(WARNING) << removed.status();
}

}  // namespace rdg::ingest
