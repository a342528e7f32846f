// The edge agent's durable outbox: every object a device hands over (a DICOM instance, an HL7
// message) is a file under DATA/outbox/objects plus a row in DATA/agent.db (SQLite, WAL,
// synchronous=FULL). A receiver writes the object straight into its file there; Add() returns
// only when file and row are on disk — the file and its directory fsynced, the row committed — so
// a device is told "stored" only for what survives a crash or power loss. (A file without a row
// was never acknowledged: opening the outbox removes it.) Rows added by several threads at once
// (associations, lab connections) share one transaction: a group commit. The forwarder takes
// due items, and each ends Sent (file removed, row kept as history) or Dead (file and a reason
// moved to DATA/dead-letter). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rdg/v1/common.pb.h"
#include "storage/base/dir_lock.h"
#include "storage/base/sqlite_db.h"

namespace rdg::agent {

struct OutboxItem {
  int64_t id = 0;
  rdg::v1::ObjectKind kind = rdg::v1::DICOM;
  std::string path;  //!< the object's file in the outbox
  int64_t size = 0;
  std::string sha256;  //!< raw 32 bytes
  std::string label;   //!< SOP Instance UID or HL7 message control ID (not logged)
  std::string source;  //!< "dicom CALLING_AE" or "hl7 PEER"
  absl::Time received_at;
  int attempts = 0;
  std::string session_id;  //!< the gateway's upload session, once opened
};

struct OutboxStats {
  int64_t pending = 0;
  int64_t pending_bytes = 0;
  std::optional<absl::Time> oldest_pending;
  int64_t sent = 0;
  int64_t sent_bytes = 0;
  int64_t dead = 0;
  int64_t sent_last_minute = 0;
  int64_t sent_bytes_last_minute = 0;
  std::string last_error;  //!< the newest failure of any item (no patient data)
  std::optional<absl::Time> last_error_at;
  std::optional<absl::Time> last_sent_at;
};

//! A received object whose bytes are on disk, with their size and digest, not yet queued: the
//! first half of Outbox::Add, which a receiver can run while it checks the object.
struct PreparedObject {
  std::string path;  //!< under DATA/outbox/objects
  int64_t size = 0;
  std::string sha256;  //!< raw 32 bytes
};

//! What the gateway said when an object was stored.
struct SentInfo {
  std::string exam_id;
  int64_t bytes_sent = 0;
  std::optional<int64_t> resumed_from;
};

class Outbox {
 public:
  //! Opens (creating) the outbox in `data_dir`, which it locks (DATA/rdg.lock: one agent per data
  //! dir; FAILED_PRECONDITION names the other's pid). Removes object files no pending row names
  //! (a crash between write and commit: the device was not told), matching by file name, so a
  //! data dir spelled differently from the last run keeps its objects (the rows follow them).
  static absl::StatusOr<std::unique_ptr<Outbox>> Open(const std::string& data_dir);
  //! Read-only view for `rdg-clinic agent status` (works while the agent runs).
  static absl::StatusOr<OutboxStats> ReadStats(const std::string& data_dir, absl::Time now);
  //! The outbox database of `data_dir` (agent.db), created or brought to the current schema.
  static absl::StatusOr<std::unique_ptr<storage::sqlite_db::Connection>> OpenDatabase(
      const std::string& data_dir);
  //! The same for operators' tools: NOT_FOUND when the agent never ran with this data dir.
  static absl::StatusOr<std::unique_ptr<storage::sqlite_db::Connection>> OpenExisting(
      const std::string& data_dir);

  //! A fresh path under DATA/outbox/objects for a receiver to write an object of `kind` into,
  //! reserved as an empty file (never the name of an existing file, even if the clock went back
  //! since the last run).
  std::string NewObjectPath(rdg::v1::ObjectKind kind);
  //! Makes the written file durable and queues it; returns its id. On error the file is removed
  //! and nothing is queued (the device must be told the store failed).
  //! `content_key`: what makes two HL7 messages the same message whatever their line ends
  //! (the gateway's parser computes it), empty for DICOM.
  absl::StatusOr<int64_t> Add(const std::string& path, rdg::v1::ObjectKind kind,
                              const std::string& label, const std::string& source, absl::Time now,
                              const std::string& content_key = "");
  //! Add in two halves. Prepare fsyncs the written file and its directory and reads its size
  //! and digest back; even on error it leaves the file where it is (a check may be reading it),
  //! for the caller to remove. Commit commits the row, in one transaction with the rows other
  //! threads commit at the same moment (if any of them fails, none is committed); on error the
  //! file is removed and nothing is queued. A prepared object that is not committed is the
  //! caller's to remove.
  absl::StatusOr<PreparedObject> Prepare(const std::string& path);
  absl::StatusOr<int64_t> Commit(const PreparedObject& object, rdg::v1::ObjectKind kind,
                                 const std::string& label, const std::string& source,
                                 absl::Time now, const std::string& content_key = "");

  //! The content key of the newest item of `kind` with `label` that is pending or sent (kept
  //! for four weeks), if any: how the agent applies the gateway's identity rule to lab messages.
  std::optional<std::string> KnownContent(rdg::v1::ObjectKind kind, const std::string& label);

  //! The oldest pending item not already taken, not waiting for `not_before` and not a suspect
  //! (below); marks it taken.
  std::optional<OutboxItem> Take(absl::Time now);
  //! The same among suspects: items whose upload lost the gateway while it processed them. The
  //! forwarder sends a suspect only while nothing else is in flight, so that a second loss is
  //! the item's own.
  std::optional<OutboxItem> TakeSuspect(absl::Time now);
  //! Whether a suspect is pending, not taken and due.
  bool HasDueSuspect(absl::Time now);
  //! Counts a loss of the gateway while it processed item `id`; returns the item's count.
  int RecordProcessingFailure(int64_t id);
  //! Returns a taken item to the queue, due again at `not_before`, recording the failure.
  void Retry(int64_t id, const std::string& error, absl::Time not_before, absl::Time now);
  //! Remembers the gateway's upload session of an item (so a restart resumes it).
  void SetSession(int64_t id, const std::string& session_id);
  //! The gateway stored the item: its file is removed, the row kept as history.
  absl::Status Sent(int64_t id, const SentInfo& info, absl::Time now);
  //! The gateway refused the item for good: file and reason (DeadLetterReasonFile) go to
  //! DATA/dead-letter.
  absl::Status Dead(int64_t id, const std::string& reason, absl::Time now);

  //! Transactions Commit has committed since Open, and the objects in Commit now: in the
  //! transaction in progress or queued for the next (figures for tests and logs).
  int64_t commit_batches();
  size_t commits_in_flight();

  //! Called after each successful Add (the forwarder's wake-up). Set before receivers start.
  void set_on_add(std::function<void()> f) { on_add_ = std::move(f); }

  //! Items neither sent nor dead (taken ones included).
  int64_t PendingCount();
  //! The earliest time a waiting item becomes due, if any item waits.
  std::optional<absl::Time> NextDue();
  OutboxStats Stats(absl::Time now);
  const std::string& dead_letter_dir() const { return dead_dir_; }

  //! A key/value pair of agent state (the inbox cursor).
  std::string GetState(const std::string& key);
  absl::Status SetState(const std::string& key, const std::string& value);

 private:
  //! One object waiting in Commit for its group commit.
  struct PendingCommit {
    const PreparedObject* object = nullptr;
    rdg::v1::ObjectKind kind = rdg::v1::DICOM;
    const std::string* label = nullptr;
    const std::string* source = nullptr;
    absl::Time received_at;
    const std::string* content_key = nullptr;
    absl::StatusOr<int64_t> id = absl::UnknownError("not committed");
    bool done = false;  //!< guarded by commit_mu_
  };

  Outbox(std::string data_dir, storage::DirectoryLock lock,
         std::unique_ptr<storage::sqlite_db::Connection> db);
  //! The leader's part of a group commit: one transaction; sets each id.
  void CommitBatch(const std::vector<PendingCommit*>& batch);
  absl::Status Recover();
  std::optional<OutboxItem> TakeFirst(const char* sql, absl::Time now, bool mark_taken);
  absl::Status SetItemState(int64_t id, const char* state, const std::string& error,
                            const SentInfo* info, absl::Time now);

  const std::string data_dir_;
  const std::string objects_dir_;
  const std::string old_tmp_dir_;  //!< where earlier versions received objects
  const std::string dead_dir_;
  storage::DirectoryLock lock_;  //!< held while the outbox is open
  std::mutex mu_;
  std::unique_ptr<storage::sqlite_db::Connection> db_;
  std::set<int64_t> taken_;                //!< guarded by mu_
  std::map<int64_t, absl::Time> waiting_;  //!< id → not before; guarded by mu_
  std::atomic<uint64_t> counter_{0};       //!< names object files (no lock: a commit may hold mu_)
  std::mutex commit_mu_;                   //!< never held with mu_
  std::condition_variable commit_cv_;
  std::vector<PendingCommit*> commit_queue_;  //!< guarded by commit_mu_
  bool committing_ = false;                   //!< a leader is committing; guarded by commit_mu_
  int64_t commit_batches_ = 0;                //!< guarded by commit_mu_
  size_t committing_count_ = 0;  //!< objects in the transaction in progress; guarded by commit_mu_
  std::function<void()> on_add_;
};

//! The file beside a dead letter's object that says why it was given up
//! (`000042-label.dcm` → `000042-label.reason.txt`).
std::string DeadLetterReasonFile(const std::string& dead_letter_file);

}  // namespace rdg::agent
