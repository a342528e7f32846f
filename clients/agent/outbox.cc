#include "clients/agent/outbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/base/digest.h"
#include "storage/base/posix_file.h"

namespace rdg::agent {
namespace {

namespace fs = std::filesystem;
using storage::sqlite_db::Connection;
using storage::sqlite_db::Stmt;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  kind         INTEGER NOT NULL,
  file         TEXT NOT NULL,
  size         INTEGER NOT NULL,
  sha256       BLOB NOT NULL,
  label        TEXT NOT NULL,
  source       TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  session_id   TEXT NOT NULL DEFAULT '',
  last_error   TEXT NOT NULL DEFAULT '',
  error_at     INTEGER,
  done_at      INTEGER,
  exam_id      TEXT NOT NULL DEFAULT '',
  bytes_sent   INTEGER NOT NULL DEFAULT 0,
  resumed_from INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, id);
CREATE INDEX IF NOT EXISTS outbox_by_done ON outbox (done_at) WHERE done_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS agent_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operator_actions (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  item    INTEGER NOT NULL,
  detail  TEXT NOT NULL
);
)sql";

// Columns added after the first release, for outboxes created before them.
constexpr std::pair<const char*, const char*> kAddedColumns[] = {
    {"processing_failures",
     "ALTER TABLE outbox ADD COLUMN processing_failures INTEGER NOT NULL DEFAULT 0"},
    {"content_key", "ALTER TABLE outbox ADD COLUMN content_key TEXT NOT NULL DEFAULT ''"},
};

//! Creates the tables (and the columns later versions added) if missing.
absl::Status EnsureSchema(Connection& db) {
  if (auto s = db.Exec(kSchema); !s.ok()) return s;
  static constexpr char kColumn[] =
      "SELECT count(*) FROM pragma_table_info('outbox') WHERE name = ?";
  for (const auto& [name, add] : kAddedColumns) {
    auto q = db.Prepare(kColumn);
    if (!q.ok()) return q.status();
    (*q)->Bind(1, absl::string_view(name));
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    const bool present = (*q)->Int(0) > 0;
    q->reset();
    if (!present) {
      if (auto s = db.Exec(add); !s.ok()) return s;
    }
  }
  // Suspects are looked for before every upload: only the few rows that are suspects. Labels
  // are looked up for every lab message (KnownContent).
  return db.Exec(
      "CREATE INDEX IF NOT EXISTS outbox_suspects ON outbox (id) "
      "WHERE state = 'pending' AND processing_failures > 0;"
      "CREATE INDEX IF NOT EXISTS outbox_by_label ON outbox (label, kind)");
}

// The columns ReadItem() reads, in its order (a macro: statements are cached by their static text).
#define OUTBOX_ITEM_COLUMNS \
  "id, kind, file, size, sha256, label, source, received_at, attempts, session_id "

// The oldest pending suspects (Outbox::TakeSuspect); one text, so one cached statement.
constexpr char kNextSuspect[] =
    "SELECT " OUTBOX_ITEM_COLUMNS
    "FROM outbox WHERE state = 'pending' AND processing_failures > 0 ORDER BY id LIMIT ?";

OutboxItem ReadItem(const Stmt& s) {
  OutboxItem it;
  it.id = s.Int(0);
  it.kind = static_cast<rdg::v1::ObjectKind>(s.Int(1));
  it.path = s.Text(2);
  it.size = s.Int(3);
  it.sha256 = s.Blob(4);
  it.label = s.Text(5);
  it.source = s.Text(6);
  it.received_at = s.Time(7);
  it.attempts = static_cast<int>(s.Int(8));
  it.session_id = s.Text(9);
  return it;
}

absl::StatusOr<OutboxStats> QueryStats(Connection& db, absl::Time now) {
  OutboxStats st;
  static constexpr char kCounts[] =
      "SELECT state, count(*), coalesce(sum(size), 0), min(received_at) FROM outbox GROUP BY state";
  auto q = db.Prepare(kCounts);
  if (!q.ok()) return q.status();
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::string state = (*q)->Text(0);
    if (state == "pending") {
      st.pending = (*q)->Int(1);
      st.pending_bytes = (*q)->Int(2);
      if (st.pending > 0) st.oldest_pending = (*q)->Time(3);
    } else if (state == "sent") {
      st.sent = (*q)->Int(1);
      st.sent_bytes = (*q)->Int(2);
    } else {
      st.dead = (*q)->Int(1);
    }
  }
  static constexpr char kRecent[] =
      "SELECT count(*), coalesce(sum(size), 0), max(done_at) FROM outbox "
      "WHERE state = 'sent' AND done_at >= ?";
  auto r = db.Prepare(kRecent);
  if (!r.ok()) return r.status();
  (*r)->Bind(1, now - absl::Minutes(1));
  if (auto row = (*r)->Step(); !row.ok()) return row.status();
  st.sent_last_minute = (*r)->Int(0);
  st.sent_bytes_last_minute = (*r)->Int(1);
  static constexpr char kLastSent[] = "SELECT max(done_at) FROM outbox WHERE state = 'sent'";
  auto ls = db.Prepare(kLastSent);
  if (!ls.ok()) return ls.status();
  if (auto row = (*ls)->Step(); !row.ok()) return row.status();
  if (!(*ls)->IsNull(0)) st.last_sent_at = (*ls)->Time(0);
  static constexpr char kLastError[] =
      "SELECT last_error, error_at FROM outbox WHERE error_at IS NOT NULL "
      "ORDER BY error_at DESC LIMIT 1";
  auto e = db.Prepare(kLastError);
  if (!e.ok()) return e.status();
  auto row = (*e)->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    st.last_error = (*e)->Text(0);
    st.last_error_at = (*e)->Time(1);
  }
  return st;
}

//! A file name made of safe characters only (for dead letters named after their label).
std::string DeadLetterName(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  }
  return out;
}

}  // namespace

std::string DeadLetterReasonFile(const std::string& dead_letter_file) {
  return std::filesystem::path(dead_letter_file).replace_extension(".reason.txt").string();
}

Outbox::Outbox(std::string data_dir, storage::DirectoryLock lock, std::unique_ptr<Connection> db)
    : data_dir_(std::move(data_dir)),
      objects_dir_(data_dir_ + "/outbox/objects"),
      old_tmp_dir_(data_dir_ + "/outbox/tmp"),
      dead_dir_(data_dir_ + "/dead-letter"),
      lock_(std::move(lock)),
      db_(std::move(db)) {}

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Open(const std::string& data_dir) {
  for (const std::string& dir : {data_dir + "/outbox/objects", data_dir + "/dead-letter"}) {
    if (auto s = storage::MakeDirectories(dir); !s.ok()) return s;
  }
  // A second agent on this data dir would sweep files the first is receiving.
  auto lock = storage::DirectoryLock::Acquire(data_dir);
  if (!lock.ok()) return lock.status();
  auto db = OpenDatabase(data_dir);
  if (!db.ok()) return db.status();
  auto outbox = std::unique_ptr<Outbox>(new Outbox(data_dir, *std::move(lock), *std::move(db)));
  if (auto s = outbox->Recover(); !s.ok()) return s;
  return outbox;
}

absl::StatusOr<std::unique_ptr<Connection>> Outbox::OpenDatabase(const std::string& data_dir) {
  auto db = Connection::Open(data_dir + "/agent.db");
  if (!db.ok()) return db.status();
  if (auto s = EnsureSchema(**db); !s.ok()) return s;
  return db;
}

absl::StatusOr<std::unique_ptr<Connection>> Outbox::OpenExisting(const std::string& data_dir) {
  std::error_code ec;
  if (!fs::exists(data_dir + "/agent.db", ec)) {
    return absl::NotFoundError(
        absl::StrCat("no agent outbox in ", data_dir, " (has the agent run with this config?)"));
  }
  return OpenDatabase(data_dir);
}

absl::StatusOr<OutboxStats> Outbox::ReadStats(const std::string& data_dir, absl::Time now) {
  auto db = OpenExisting(data_dir);
  if (!db.ok()) return db.status();
  return QueryStats(**db, now);
}

absl::Status Outbox::Recover() {
  // Earlier versions received into a folder of their own; what is left there was never
  // acknowledged to a device.
  std::error_code ec;
  fs::remove_all(old_tmp_dir_, ec);
  // Object files without a pending row: received but not committed (not acknowledged either),
  // or sent while the removal did not happen. Rows are matched by file name: a row written while
  // the data dir was spelled otherwise ("data/" then "/srv/agent/data") is pointed at its file
  // where it lies now, in the objects or the dead-letter folder.
  std::set<std::string> referenced;
  std::vector<std::pair<int64_t, std::string>> moved;
  static constexpr char kFiles[] = "SELECT id, file FROM outbox WHERE state = 'pending'";
  auto q = db_->Prepare(kFiles);
  if (!q.ok()) return q.status();
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::string file = (*q)->Text(1);
    const std::string name = fs::path(file).filename().string();
    referenced.insert(name);
    if (fs::exists(file, ec)) continue;
    for (const std::string& dir : {objects_dir_, dead_dir_}) {
      if (fs::exists(dir + "/" + name, ec)) moved.emplace_back((*q)->Int(0), dir + "/" + name);
    }
  }
  q->reset();
  static constexpr char kRepoint[] = "UPDATE outbox SET file = ? WHERE id = ?";
  for (const auto& [id, file] : moved) {
    auto u = db_->Prepare(kRepoint);
    if (!u.ok()) return u.status();
    if (auto s = (*u)->Bind(1, file).Bind(2, id).Run(); !s.ok()) return s;
  }
  auto objects = storage::ListFiles(objects_dir_);
  if (!objects.ok()) return objects.status();
  for (const auto& name : *objects) {
    if (!referenced.count(name)) (void)storage::RemoveFile(objects_dir_ + "/" + name);
  }
  // Keep four weeks of history for status figures and audits of what was forwarded.
  static constexpr char kPrune[] = "DELETE FROM outbox WHERE state = 'sent' AND done_at < ?";
  auto prune = db_->Prepare(kPrune);
  if (!prune.ok()) return prune.status();
  (*prune)->Bind(1, absl::Now() - absl::Hours(24 * 28));
  return (*prune)->Run();
}

std::string Outbox::NewObjectPath(rdg::v1::ObjectKind kind) {
  // The name is taken with O_EXCL: a clock set back (a clinic PC without an RTC battery) could
  // otherwise name a file of the last run, an acknowledged object the receiver would overwrite.
  std::string path;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    path = absl::StrFormat("%s/%d-%d.%s", objects_dir_, absl::ToUnixMicros(absl::Now()), ++counter_,
                           kind == rdg::v1::HL7V2_LAB ? "hl7" : "dcm");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);
      return path;
    }
    if (errno != EEXIST) break;  // the receiver's own open fails and says why
  }
  return path;
}

absl::StatusOr<int64_t> Outbox::Add(const std::string& path, rdg::v1::ObjectKind kind,
                                    const std::string& label, const std::string& source,
                                    absl::Time now, const std::string& content_key) {
  auto prepared = Prepare(path);
  if (!prepared.ok()) {
    (void)storage::RemoveFile(path);
    return prepared.status();
  }
  return Commit(*prepared, kind, label, source, now, content_key);
}

absl::StatusOr<PreparedObject> Outbox::Prepare(const std::string& path) {
  {
    // The bytes and the directory entry are flushed at the same time: neither has to be on
    // disk before the other, only both before the row is committed.
    absl::Status dir_synced;
    std::optional<std::thread> syncing_dir;
    try {
      syncing_dir.emplace([&] { dir_synced = storage::SyncDirectory(objects_dir_); });
    } catch (const std::system_error&) {  // no thread to be had: one after the other
      dir_synced = storage::SyncDirectory(objects_dir_);
    }
    auto f = storage::File::OpenForRead(path);
    absl::Status file_synced = f.ok() ? f->Sync() : f.status();
    if (syncing_dir) syncing_dir->join();
    if (!file_synced.ok()) return file_synced;
    if (!dir_synced.ok()) return dir_synced;
  }
  PreparedObject object;
  object.path = path;
  auto size = storage::FileSize(path);
  if (!size.ok()) return size.status();
  object.size = *size;
  auto file_digest = storage::Sha256::OfFile(path);
  if (!file_digest.ok()) return absl::DataLossError("cannot read the received object back");
  object.sha256 = storage::ToRaw(*file_digest);
  return object;
}

absl::StatusOr<int64_t> Outbox::Commit(const PreparedObject& object, rdg::v1::ObjectKind kind,
                                       const std::string& label, const std::string& source,
                                       absl::Time now, const std::string& content_key) {
  PendingCommit mine{&object, kind, &label, &source, now, &content_key};
  {
    // The first waiter without a leader commits everything queued by then; the others wait for
    // it (or lead the next batch).
    std::unique_lock<std::mutex> lock(commit_mu_);
    commit_queue_.push_back(&mine);
    commit_cv_.wait(lock, [&] { return mine.done || !committing_; });
    if (!mine.done) {
      committing_ = true;
      std::vector<PendingCommit*> batch;
      batch.swap(commit_queue_);
      committing_count_ = batch.size();
      lock.unlock();
      CommitBatch(batch);
      lock.lock();
      for (PendingCommit* p : batch) p->done = true;
      ++commit_batches_;
      committing_count_ = 0;
      committing_ = false;
      commit_cv_.notify_all();
    }
  }
  if (!mine.id.ok()) {
    (void)storage::RemoveFile(object.path);
    return mine.id.status();
  }
  if (on_add_) on_add_();
  return *mine.id;
}

int64_t Outbox::commit_batches() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  return commit_batches_;
}

size_t Outbox::commits_in_flight() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  return committing_count_ + commit_queue_.size();
}

void Outbox::CommitBatch(const std::vector<PendingCommit*>& batch) {
  static constexpr char kInsert[] =
      "INSERT INTO outbox (kind, file, size, sha256, label, source, received_at, content_key) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Status committed =
      storage::sqlite_db::InWriteTransaction(*db_, [&]() -> absl::Status {
        for (PendingCommit* p : batch) {
          auto ins = db_->Prepare(kInsert);
          if (!ins.ok()) return ins.status();
          (*ins)
              ->Bind(1, static_cast<int64_t>(p->kind))
              .Bind(2, p->object->path)
              .Bind(3, p->object->size);
          (*ins)->BindBlob(4, p->object->sha256).Bind(5, *p->label).Bind(6, *p->source);
          (*ins)->Bind(7, p->received_at).Bind(8, *p->content_key);
          // A failed insert (disk full, I/O error) may have ended the transaction: the batch
          // fails as one, so no row is committed whose file its caller then removes.
          if (absl::Status s = (*ins)->Run(); !s.ok()) return s;
          p->id = db_->LastInsertRowid();
        }
        return absl::OkStatus();
      });
  if (!committed.ok()) {
    for (PendingCommit* p : batch) p->id = committed;
  }
}

std::optional<OutboxItem> Outbox::Take(absl::Time now) {
  // Among the first (taken + waiting + 1) pending rows there is one eligible, if any is.
  static constexpr char kNext[] =
      "SELECT " OUTBOX_ITEM_COLUMNS
      "FROM outbox WHERE state = 'pending' AND processing_failures = 0 ORDER BY id LIMIT ?";
  return TakeFirst(kNext, now, /*mark_taken=*/true);
}

std::optional<OutboxItem> Outbox::TakeSuspect(absl::Time now) {
  return TakeFirst(kNextSuspect, now, /*mark_taken=*/true);
}

bool Outbox::HasDueSuspect(absl::Time now) {
  return TakeFirst(kNextSuspect, now, /*mark_taken=*/false).has_value();
}

int Outbox::RecordProcessingFailure(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  static constexpr char kCount[] =
      "UPDATE outbox SET processing_failures = processing_failures + 1 WHERE id = ? "
      "RETURNING processing_failures";
  auto u = db_->Prepare(kCount);
  if (!u.ok()) return 0;
  (*u)->Bind(1, id);
  auto row = (*u)->Step();
  const int count = row.ok() && *row ? static_cast<int>((*u)->Int(0)) : 0;
  u->reset();
  return count;
}

std::optional<OutboxItem> Outbox::TakeFirst(const char* sql, absl::Time now, bool mark_taken) {
  std::lock_guard<std::mutex> lock(mu_);
  auto q = db_->Prepare(sql);
  if (!q.ok()) return std::nullopt;
  (*q)->Bind(1, static_cast<int64_t>(taken_.size() + waiting_.size() + 1));
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok() || !*row) return std::nullopt;
    const int64_t id = (*q)->Int(0);
    if (taken_.count(id)) continue;
    if (auto w = waiting_.find(id); w != waiting_.end()) {
      if (w->second > now) continue;
      if (mark_taken) waiting_.erase(w);
    }
    if (mark_taken) taken_.insert(id);
    return ReadItem(**q);
  }
}

void Outbox::Retry(int64_t id, const std::string& error, absl::Time not_before, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  taken_.erase(id);
  waiting_[id] = not_before;
  static constexpr char kRetry[] =
      "UPDATE outbox SET attempts = attempts + 1, last_error = ?, error_at = ? WHERE id = ?";
  if (auto u = db_->Prepare(kRetry); u.ok()) {
    (void)(*u)->Bind(1, error).Bind(2, now).Bind(3, id).Run();
  }
}

void Outbox::SetSession(int64_t id, const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  static constexpr char kSession[] = "UPDATE outbox SET session_id = ? WHERE id = ?";
  if (auto u = db_->Prepare(kSession); u.ok()) (void)(*u)->Bind(1, session_id).Bind(2, id).Run();
}

absl::Status Outbox::SetItemState(int64_t id, const char* state, const std::string& error,
                                  const SentInfo* info, absl::Time now) {
  static constexpr char kDone[] =
      "UPDATE outbox SET state = ?, attempts = attempts + 1, done_at = ?, exam_id = ?, "
      "bytes_sent = ?, resumed_from = ?, last_error = CASE WHEN ? = '' THEN last_error ELSE ? "
      "END, error_at = CASE WHEN ? = '' THEN error_at ELSE ? END WHERE id = ?";
  auto u = db_->Prepare(kDone);
  if (!u.ok()) return u.status();
  (*u)->Bind(1, absl::string_view(state)).Bind(2, now);
  (*u)->Bind(3, info ? info->exam_id : "").Bind(4, info ? info->bytes_sent : 0);
  if (info && info->resumed_from) (*u)->Bind(5, *info->resumed_from);
  (*u)->Bind(6, error).Bind(7, error).Bind(8, error).Bind(9, now).Bind(10, id);
  return (*u)->Run();
}

absl::Status Outbox::Sent(int64_t id, const SentInfo& info, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  taken_.erase(id);
  waiting_.erase(id);
  static constexpr char kFile[] = "SELECT file FROM outbox WHERE id = ?";
  auto q = db_->Prepare(kFile);
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  const std::string file = *row ? (*q)->Text(0) : "";
  q->reset();
  // Row first: a crash before the removal leaves an unreferenced file, swept at start-up.
  if (auto s = SetItemState(id, "sent", "", &info, now); !s.ok()) return s;
  return file.empty() ? absl::OkStatus() : storage::RemoveFile(file);
}

absl::Status Outbox::Dead(int64_t id, const std::string& reason, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  taken_.erase(id);
  waiting_.erase(id);
  static constexpr char kItem[] = "SELECT " OUTBOX_ITEM_COLUMNS "FROM outbox WHERE id = ?";
  auto q = db_->Prepare(kItem);
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("outbox item ", id));
  const OutboxItem item = ReadItem(**q);
  q->reset();
  // The dead letter first (file, then reason), then the row: nothing is lost on a crash.
  const std::string base = absl::StrFormat("%s/%06d-%s", dead_dir_, id, DeadLetterName(item.label));
  const std::string file = base + (item.kind == rdg::v1::HL7V2_LAB ? ".hl7" : ".dcm");
  if (auto s = storage::RenameFile(item.path, file); !s.ok() && !absl::IsNotFound(s)) {
    return s;
  }
  {
    auto f = storage::File::OpenForAppend(DeadLetterReasonFile(file), /*create=*/true);
    if (!f.ok()) return f.status();
    if (auto s = f->Truncate(0); !s.ok()) return s;
    const std::string text = absl::StrCat(
        "outbox item ", id, " (", item.source, ", received ",
        absl::FormatTime(absl::RFC3339_sec, item.received_at, absl::UTCTimeZone()), ")\n",
        "moved to dead-letter at ", absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()),
        ":\n", reason, "\n");
    if (auto s = f->Append(text); !s.ok()) return s;
    if (auto s = f->Sync(); !s.ok()) return s;
  }
  if (auto s = storage::SyncDirectory(dead_dir_); !s.ok()) return s;
  // The row follows its file (a dead letter queued again is sent from where it lies), in the
  // same transaction as its new state.
  static constexpr char kMoved[] = "UPDATE outbox SET file = ? WHERE id = ?";
  return storage::sqlite_db::InWriteTransaction(*db_, [&]() -> absl::Status {
    auto moved = db_->Prepare(kMoved);
    if (!moved.ok()) return moved.status();
    if (auto s = (*moved)->Bind(1, file).Bind(2, id).Run(); !s.ok()) return s;
    return SetItemState(id, "dead", reason, nullptr, now);
  });
}

std::optional<std::string> Outbox::KnownContent(rdg::v1::ObjectKind kind,
                                                const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  static constexpr char kKnown[] =
      "SELECT content_key FROM outbox WHERE kind = ? AND label = ? AND state <> 'dead' "
      "ORDER BY id DESC LIMIT 1";
  auto q = db_->Prepare(kKnown);
  if (!q.ok()) return std::nullopt;
  (*q)->Bind(1, static_cast<int64_t>(kind)).Bind(2, label);
  auto row = (*q)->Step();
  if (!row.ok() || !*row) return std::nullopt;
  return (*q)->Text(0);
}

int64_t Outbox::PendingCount() {
  std::lock_guard<std::mutex> lock(mu_);
  static constexpr char kCount[] = "SELECT count(*) FROM outbox WHERE state = 'pending'";
  auto q = db_->Prepare(kCount);
  if (!q.ok()) return 0;
  auto row = (*q)->Step();
  return row.ok() && *row ? (*q)->Int(0) : 0;
}

std::optional<absl::Time> Outbox::NextDue() {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<absl::Time> due;
  for (const auto& [id, t] : waiting_) due = due ? std::min(*due, t) : t;
  return due;
}

OutboxStats Outbox::Stats(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = QueryStats(*db_, now);
  return st.ok() ? *st : OutboxStats{};
}

std::string Outbox::GetState(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  static constexpr char kGet[] = "SELECT value FROM agent_state WHERE key = ?";
  auto q = db_->Prepare(kGet);
  if (!q.ok()) return "";
  (*q)->Bind(1, key);
  auto row = (*q)->Step();
  return row.ok() && *row ? (*q)->Text(0) : "";
}

absl::Status Outbox::SetState(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  static constexpr char kSet[] =
      "INSERT INTO agent_state (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
  auto u = db_->Prepare(kSet);
  if (!u.ok()) return u.status();
  return (*u)->Bind(1, key).Bind(2, value).Run();
}

}  // namespace rdg::agent
