#include "clients/agent/dead_letters.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "clients/agent/outbox.h"
#include "storage/base/digest.h"
#include "storage/base/posix_file.h"

namespace rdg::agent {
namespace {

using storage::sqlite_db::Connection;
using storage::sqlite_db::InWriteTransaction;
using storage::sqlite_db::Stmt;

#define DEAD_LETTER_COLUMNS \
  "id, kind, source, label, size, received_at, done_at, attempts, last_error, file, sha256 "

DeadLetter ReadDeadLetter(const Stmt& s) {
  DeadLetter d;
  d.id = s.Int(0);
  d.kind = static_cast<rdg::v1::ObjectKind>(s.Int(1));
  d.source = s.Text(2);
  d.label = s.Text(3);
  d.size = s.Int(4);
  d.received_at = s.Time(5);
  if (!s.IsNull(6)) d.dead_at = s.Time(6);
  d.attempts = static_cast<int>(s.Int(7));
  d.reason = s.Text(8);
  d.file = s.Text(9);
  return d;
}

absl::StatusOr<std::optional<DeadLetter>> FindDeadLetter(Connection& db, int64_t id,
                                                         std::string* sha256 = nullptr) {
  static constexpr char kOne[] =
      "SELECT " DEAD_LETTER_COLUMNS "FROM outbox WHERE id = ? AND state = 'dead'";
  auto q = db.Prepare(kOne);
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<DeadLetter>();
  if (sha256 != nullptr) *sha256 = (*q)->Blob(10);
  return std::optional<DeadLetter>(ReadDeadLetter(**q));
}

absl::Status Record(Connection& db, absl::Time now, const std::string& actor, const char* action,
                    int64_t item, const std::string& detail) {
  static constexpr char kRecord[] =
      "INSERT INTO operator_actions (at, actor, action, item, detail) VALUES (?, ?, ?, ?, ?)";
  auto ins = db.Prepare(kRecord);
  if (!ins.ok()) return ins.status();
  return (*ins)
      ->Bind(1, now)
      .Bind(2, actor)
      .Bind(3, absl::string_view(action))
      .Bind(4, item)
      .Bind(5, detail)
      .Run();
}

absl::Status NotADeadLetter(int64_t id) {
  return absl::NotFoundError(
      absl::StrCat("item ", id, " is not a dead letter (see `rdg-clinic agent dead-letters`)"));
}

}  // namespace

absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(const std::string& data_dir) {
  auto db = Outbox::OpenExisting(data_dir);
  if (!db.ok()) return db.status();
  static constexpr char kAll[] =
      "SELECT " DEAD_LETTER_COLUMNS "FROM outbox WHERE state = 'dead' ORDER BY id";
  auto q = (*db)->Prepare(kAll);
  if (!q.ok()) return q.status();
  std::vector<DeadLetter> out;
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadDeadLetter(**q));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> RetryDeadLetters(const std::string& data_dir,
                                                      std::optional<int64_t> id,
                                                      const std::string& actor, absl::Time now) {
  auto db = Outbox::OpenExisting(data_dir);
  if (!db.ok()) return db.status();
  std::vector<DeadLetter> chosen;
  if (id.has_value()) {
    auto found = FindDeadLetter(**db, *id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NotADeadLetter(*id);
    chosen.push_back(**found);
  } else {
    auto all = ListDeadLetters(data_dir);
    if (!all.ok()) return all.status();
    chosen = *std::move(all);
  }
  std::vector<int64_t> queued;
  for (const DeadLetter& d : chosen) {
    // Pending again, from where its file lies; a new upload session, a new quarantine count.
    static constexpr char kRequeue[] =
        "UPDATE outbox SET state = 'pending', session_id = '', processing_failures = 0, "
        "done_at = NULL WHERE id = ? AND state = 'dead'";
    absl::Status s = InWriteTransaction(**db, [&]() -> absl::Status {
      auto u = (*db)->Prepare(kRequeue);
      if (!u.ok()) return u.status();
      if (auto r = (*u)->Bind(1, d.id).Run(); !r.ok()) return r;
      if ((*db)->Changes() == 0) return NotADeadLetter(d.id);  // e.g. purged meanwhile
      return Record(**db, now, actor, "retry", d.id,
                    absl::StrCat(d.source, ", ", d.size, " bytes; was: ", d.reason));
    });
    if (absl::IsNotFound(s) && !id.has_value()) continue;
    if (!s.ok()) return s;
    // The reason stays in the row and in the operator's record; the file beside the object
    // would only mislead whoever looks into the folder later.
    (void)storage::RemoveFile(DeadLetterReasonFile(d.file));
    queued.push_back(d.id);
  }
  return queued;
}

absl::Status PurgeDeadLetter(const std::string& data_dir, int64_t id, const std::string& actor,
                             absl::Time now) {
  auto db = Outbox::OpenExisting(data_dir);
  if (!db.ok()) return db.status();
  std::string sha256;
  auto found = FindDeadLetter(**db, id, &sha256);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return NotADeadLetter(id);
  const DeadLetter& d = **found;
  static constexpr char kDelete[] = "DELETE FROM outbox WHERE id = ? AND state = 'dead'";
  // The row and the record first: a crash before the files go leaves files no row names, which
  // an operator can see in the folder, never a row whose object is gone.
  absl::Status s = InWriteTransaction(**db, [&]() -> absl::Status {
    auto del = (*db)->Prepare(kDelete);
    if (!del.ok()) return del.status();
    if (auto r = (*del)->Bind(1, id).Run(); !r.ok()) return r;
    if ((*db)->Changes() == 0) return NotADeadLetter(id);
    return Record(**db, now, actor, "purge", id,
                  absl::StrCat(d.source, ", label ", d.label, ", ", d.size, " bytes, sha256 ",
                               storage::HexOf(sha256), "; was: ", d.reason));
  });
  if (!s.ok()) return s;
  if (auto r = storage::RemoveFile(d.file); !r.ok() && !absl::IsNotFound(r)) return r;
  if (auto r = storage::RemoveFile(DeadLetterReasonFile(d.file)); !r.ok() && !absl::IsNotFound(r)) {
    return r;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OperatorAction>> RecentOperatorActions(const std::string& data_dir,
                                                                  int limit) {
  auto db = Outbox::OpenExisting(data_dir);
  if (!db.ok()) return db.status();
  static constexpr char kRecent[] =
      "SELECT at, actor, action, item, detail FROM operator_actions ORDER BY id DESC LIMIT ?";
  auto q = (*db)->Prepare(kRecent);
  if (!q.ok()) return q.status();
  (*q)->Bind(1, static_cast<int64_t>(limit));
  std::vector<OperatorAction> out;
  for (;;) {
    auto row = (*q)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({(*q)->Time(0), (*q)->Text(1), (*q)->Text(2), (*q)->Int(3), (*q)->Text(4)});
  }
  return out;
}

std::string CurrentOperator() {
  std::string name;
  if (const passwd* pw = getpwuid(geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    name = pw->pw_name;
  } else {
    name = absl::StrCat("uid ", geteuid());
  }
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') {
    absl::StrAppend(&name, " (sudo by ", sudo, ")");
  }
  return name;
}

}  // namespace rdg::agent
