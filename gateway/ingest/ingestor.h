// Ingest: resumable upload sessions whose bytes go to disk as they arrive, and the commit that
// verifies, parses, stores and indexes an object before the client is told it is safe.
//
// Session life: Open (optionally persisted, so it survives a gateway restart) → Attach by one
// stream at a time → Append chunks at offsets → Commit, or Detach (bytes fsynced, session
// persisted: the client resumes from the committed offset later). Any rejection leaves no trace.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "gateway/auth/principal.h"
#include "gateway/common/clock.h"
#include "gateway/common/storage_guard.h"
#include "gateway/identity/patient_match.h"
#include "gateway/ingest/index_committer.h"
#include "gateway/routing/router.h"
#include "rdg/v1/config.pb.h"
#include "rdg/v1/ingest.pb.h"
#include "storage/blob_store.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"
#include "storage/index/identity_conflict_store.h"
#include "storage/index/session_store.h"
#include "storage/parsing/object_parser.h"
#include "storage/parsing/parsed_object.h"
#include "storage/staging_area.h"

namespace rdg::ingest {

class Ingestor;

//! One stream's exclusive hold on a session. Not thread-safe: one stream uses it at a time.
class UploadHandle {
 public:
  ~UploadHandle();  //!< detaches if still attached
  UploadHandle(const UploadHandle&) = delete;
  UploadHandle& operator=(const UploadHandle&) = delete;

  const std::string& session_id() const { return record_.session_id; }
  int64_t committed_offset() const { return offset_; }
  //! The object's declared size.
  int64_t size() const { return record_.size; }

  //! Appends `data` found at `offset` of the object. Bytes before the committed offset are
  //! skipped (a resent overlap); a gap is FAILED_PRECONDITION naming the committed offset.
  absl::Status Append(int64_t offset, absl::string_view data);
  //! Verifies, parses, stores and indexes the object; durable when this returns OK. With
  //! `expected_study` (a STOW-RS into a named study), a DICOM object of another study is refused
  //! (FAILED_PRECONDITION) and nothing of it is stored.
  absl::StatusOr<rdg::v1::UploadStatus> Commit(absl::string_view expected_study = {});
  //! Ends this stream's hold: fsyncs staged bytes and persists the session for a later resume.
  rdg::v1::UploadStatus Detach();
  //! Ends this stream's hold and removes the session and its bytes: the stream broke a rule
  //! (data past the declared size, a bad offset, ...), so nothing of it is kept.
  void Abandon() { Discard(); }

 private:
  friend class Ingestor;
  UploadHandle(Ingestor& owner, storage::UploadSessionRecord record, bool persisted);
  absl::Status OpenStaging();
  //! Removes the session and its bytes (after a rejection or a commit).
  void Discard();

  Ingestor& owner_;
  storage::UploadSessionRecord record_;
  auth::Principal uploader_;  //!< who attached it: the audit record of its commit names them
  bool persisted_;            //!< the session row exists in the index
  bool attached_ = true;
  std::optional<storage::File> file_;
  storage::Sha256 hasher_;
  int64_t offset_ = 0;
};

class Ingestor {
 public:
  struct Options {
    rdg::v1::Limits limits;
    //! Routes each new exam (queue, priority, SLA due time). Without one, exams stay RECEIVED.
    const routing::Router* router = nullptr;
    const routing::SlaTable* sla = nullptr;
    //! Lab critical values beyond the lab's own flags (config critical_values).
    parsing::CriticalValueTable critical = {};
    //! Parses staged objects. The gateway passes its isolated parser processes; without one,
    //! objects are parsed in this process (unit tests).
    const parsing::ObjectParser* parser = nullptr;
    //! Refuses new sessions and streams (UNAVAILABLE) while the disk is below its reserve or the
    //! index is unsafe. None: always admitted (unit tests).
    StorageGuard* storage_guard = nullptr;
  };
  //! The index's stores it uses.
  struct Stores {
    storage::SessionStore& sessions;
    storage::ExamStore& exams;
    storage::AuditStore& audit;
    storage::IdentityConflictStore& identity_conflicts;
  };
  Ingestor(const Options& options, Stores stores, storage::BlobStore& blobs,
           storage::StagingArea staging, IndexCommitter& committer, const Clock& clock);

  //! Start-up: removes staged files without a session, sessions without files, expired sessions.
  absl::Status Recover();

  //! Opens a session (or finds the caller's open session for the same content). With `persist`
  //! the session is written to the index at once (a client that plans to resume); otherwise it
  //! is persisted only if a stream ends before committing.
  absl::StatusOr<rdg::v1::UploadStatus> Open(const auth::Principal& principal,
                                             const rdg::v1::OpenUploadRequest& request,
                                             bool persist);
  //! What a stream gets for its first message: a held session, or (content already stored for
  //! the institution) the final status at once.
  struct Attachment {
    std::unique_ptr<UploadHandle> handle;
    std::optional<rdg::v1::UploadStatus> already_stored;
  };
  //! Opens or continues the session named by the stream's first message and holds it.
  absl::StatusOr<Attachment> Attach(const auth::Principal& principal,
                                    const rdg::v1::UploadRequest& first);
  absl::StatusOr<rdg::v1::UploadStatus> Status(const auth::Principal& principal,
                                               const std::string& session_id);
  absl::StatusOr<rdg::v1::UploadStatus> Abort(const auth::Principal& principal,
                                              const std::string& session_id);
  //! A page of the caller's institution's open sessions, oldest first.
  absl::StatusOr<rdg::v1::ListUploadsResponse> List(const auth::Principal& principal, int page_size,
                                                    const std::string& page_token);
  //! Removes sessions idle for longer than limits.upload_ttl_seconds; returns how many.
  absl::StatusOr<int> ExpireSessions();

  //! Objects committed since start-up (for /metrics).
  struct Counters {
    std::atomic<int64_t> stored{0};      //!< new objects indexed
    std::atomic<int64_t> duplicates{0};  //!< already stored with the same bytes
    std::atomic<int64_t> refused{0};     //!< not parseable, conflicting identity, wrong digest
    std::atomic<int64_t> bytes_stored{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  friend class UploadHandle;
  absl::Status ValidateOpen(const rdg::v1::OpenUploadRequest& request) const;
  //! The caller's stored object or open session for this content, or a new session record.
  struct Found {
    std::optional<rdg::v1::UploadStatus> already_stored;
    storage::UploadSessionRecord record;
    bool persisted = false;
  };
  absl::StatusOr<Found> FindOrCreate(const auth::Principal& principal,
                                     const rdg::v1::OpenUploadRequest& request);
  absl::StatusOr<storage::UploadSessionRecord> LoadSession(const auth::Principal& principal,
                                                           const std::string& session_id);
  absl::StatusOr<std::unique_ptr<UploadHandle>> Hold(storage::UploadSessionRecord record,
                                                     bool persisted);
  void Release(const std::string& session_id);
  absl::Time ExpiresAt(const storage::UploadSessionRecord& record) const;
  //! Writes a new session to the index within the institution's limit of open sessions
  //! (atomically), UNAVAILABLE when the limit is reached.
  absl::Status PersistSession(const storage::UploadSessionRecord& record);
  absl::Status TooManySessions() const;
  //! The storage guard's word on taking more bytes now.
  absl::Status AdmitBytes() const;
  rdg::v1::UploadStatus StatusOf(const storage::UploadSessionRecord& record, int64_t offset) const;
  //! Whether a connection is attached to (writing to) the session now.
  bool InUse(const std::string& session_id);
  //! Lab messages: the parsed object, or a rejection carrying its AE/AR ACK; DICOM otherwise.
  absl::StatusOr<parsing::ParsedObject> ParseStaged(const storage::UploadSessionRecord& session,
                                                    const std::string& path) const;
  //! The AA acknowledgement of a lab message that is already stored.
  absl::StatusOr<rdg::v1::Hl7Acknowledgement> AckForStored(const storage::Digest& digest,
                                                           int64_t size) const;
  //! Adopts the blob (unless the object is `stored` already) and commits the index rows.
  absl::StatusOr<storage::CommitOutcome> Store(const storage::UploadSessionRecord& session,
                                               const std::string& path,
                                               const storage::Digest& digest, bool stored,
                                               storage::NewObject item);
  //! After a commit: a new exam's identity review; the staged bytes and the session go.
  void AfterCommit(UploadHandle& handle, const storage::CommitOutcome& outcome,
                   storage::ExamRecord exam);
  //! Commit path shared by handles.
  absl::StatusOr<rdg::v1::UploadStatus> CommitStaged(UploadHandle& handle,
                                                     const storage::Digest& digest,
                                                     absl::string_view expected_study);
  //! The refusal of an object whose patient is not its exam's (DICOM: same Study Instance UID;
  //! HL7: same order), listed for the administrators; lab messages carry an AE acknowledgement.
  absl::Status RefuseOtherPatient(const storage::ExamRecord& exam, std::vector<std::string> fields,
                                  const std::string& uid,
                                  const std::optional<formats::Hl7Header>& hl7,
                                  const std::function<rdg::v1::Hl7Acknowledgement(
                                      formats::Hl7AckCode, const formats::Hl7Rejection*)>& ack);
  //! The refusal of an object stored before with other bytes (same SOP Instance UID, or the same
  //! HL7 message control ID); lab messages carry an AE acknowledgement.
  static absl::Status RefuseChangedObject(
      const std::string& uid, const std::optional<formats::Hl7Header>& hl7,
      const std::function<rdg::v1::Hl7Acknowledgement(formats::Hl7AckCode,
                                                      const formats::Hl7Rejection*)>& ack);
  //! What the clinic is told of a committed object.
  static rdg::v1::UploadStatus CommittedStatus(const storage::UploadSessionRecord& session,
                                               const storage::CommitOutcome& outcome,
                                               const std::string& uid, const std::string& study_uid,
                                               const std::string& text_notes);
  //! Blob pins keep a blob that an in-flight commit of this gateway relies on from being removed
  //! (uploads on other gateways sharing the store are kept off by the committer's blob holds).
  void Pin(const std::string& sha256_hex);
  void UnpinAndCollect(const std::string& sha256_hex, const storage::Digest& digest,
                       bool maybe_unreferenced);

  const Options options_;
  //! Used when options_.parser is null.
  const parsing::InProcessParser in_process_parser_{options_.critical,
                                                    formats::DicomStructureLimits{}};
  const parsing::ObjectParser& parser_ =
      options_.parser != nullptr ? *options_.parser : in_process_parser_;
  const Stores stores_;
  storage::BlobStore& blobs_;
  const storage::StagingArea staging_;
  IndexCommitter& committer_;
  const Clock& clock_;
  identity::PatientLinker linker_{stores_.exams, stores_.identity_conflicts, clock_};

  absl::Mutex mu_;
  //! Sessions currently held by a stream (at most one stream per session).
  absl::flat_hash_set<std::string> attached_ ABSL_GUARDED_BY(mu_);

  absl::Mutex pins_mu_;
  absl::flat_hash_map<std::string, int> pins_ ABSL_GUARDED_BY(pins_mu_);
  Counters counters_;
};

}  // namespace rdg::ingest
