#include "storage/postgres/pg_session_store.h"

#include "absl/strings/str_cat.h"

namespace rdg::storage::pg {
namespace {

#define SESSION_COLUMNS                                                                        \
  "session_id, institution, user_name, kind, size, sha256, priority, client_ref, created_at, " \
  "updated_at"

UploadSessionRecord ReadSession(const Result& r, int row) {
  UploadSessionRecord s;
  s.session_id = r.Text(row, 0);
  s.institution = r.Text(row, 1);
  s.user = r.Text(row, 2);
  s.kind = static_cast<ObjectKind>(r.Int(row, 3));
  s.size = r.Int(row, 4);
  s.sha256_hex = r.Text(row, 5);
  s.priority = static_cast<Priority>(r.Int(row, 6));
  s.client_ref = r.Text(row, 7);
  s.created_at = r.Time(row, 8);
  s.updated_at = r.Time(row, 9);
  return s;
}

absl::StatusOr<std::optional<UploadSessionRecord>> First(absl::StatusOr<Result> r) {
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ReadSession(*r, 0);
}

}  // namespace

absl::Status PgSessionStore::CreateSession(const UploadSessionRecord& r, int max_per_institution) {
  // Replicas insert concurrently: the institution's lock orders them, so each count sees every
  // session committed before it.
  static constexpr char kLock[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))";
  static constexpr char kInsert[] =
      "INSERT INTO upload_sessions (" SESSION_COLUMNS
      ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 "
      "WHERE (SELECT count(*) FROM upload_sessions WHERE institution = $2) < $11";
  return pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::Status {
    if (auto s = conn.Exec(kLock, {P(absl::StrCat("upload_sessions/", r.institution))}); !s.ok()) {
      return s.status();
    }
    auto ins = conn.Exec(
        kInsert, {P(r.session_id), P(r.institution), P(r.user), P(int64_t{Number(r.kind)}),
                  P(r.size), P(r.sha256_hex), P(int64_t{Number(r.priority)}), P(r.client_ref),
                  P(r.created_at), P(r.updated_at), P(max_per_institution)});
    if (!ins.ok()) return ins.status();
    if (ins->affected() == 0) return SessionQuotaError(r.institution, max_per_institution);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<UploadSessionRecord>> PgSessionStore::GetSession(
    const std::string& session_id) {
  static constexpr char kGet[] =
      "SELECT " SESSION_COLUMNS " FROM upload_sessions WHERE session_id = $1";
  return First(pool_.Query(kGet, {P(session_id)}));
}

absl::StatusOr<std::optional<UploadSessionRecord>> PgSessionStore::FindSession(
    const std::string& institution, const std::string& sha256_hex, int64_t size) {
  static constexpr char kFind[] =
      "SELECT " SESSION_COLUMNS
      " FROM upload_sessions WHERE institution = $1 AND sha256 = $2 AND size = $3 LIMIT 1";
  return First(pool_.Query(kFind, {P(institution), P(sha256_hex), P(size)}));
}

absl::StatusOr<int> PgSessionStore::CountSessions(const std::string& institution) {
  static constexpr char kCount[] = "SELECT count(*) FROM upload_sessions WHERE institution = $1";
  auto r = pool_.Query(kCount, {P(institution)});
  if (!r.ok()) return r.status();
  return static_cast<int>(r->Int(0, 0));
}

absl::Status PgSessionStore::TouchSession(const std::string& session_id, absl::Time at) {
  static constexpr char kTouch[] =
      "UPDATE upload_sessions SET updated_at = $2 WHERE session_id = $1";
  return pool_.Query(kTouch, {P(session_id), P(at)}).status();
}

absl::Status PgSessionStore::DeleteSession(const std::string& session_id) {
  static constexpr char kDelete[] = "DELETE FROM upload_sessions WHERE session_id = $1";
  return pool_.Query(kDelete, {P(session_id)}).status();
}

absl::StatusOr<std::vector<UploadSessionRecord>> PgSessionStore::ListSessions() {
  static constexpr char kAll[] =
      "SELECT " SESSION_COLUMNS " FROM upload_sessions ORDER BY created_at, session_id";
  auto r = pool_.Query(kAll, {});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadSession);
}

absl::StatusOr<std::vector<UploadSessionRecord>> PgSessionStore::ListSessionsOf(
    const std::string& institution, const std::optional<SessionCursor>& after, int limit) {
  static constexpr char kPage[] =
      "SELECT " SESSION_COLUMNS
      " FROM upload_sessions WHERE institution = $1 "
      "AND ($2::bigint IS NULL OR (created_at, session_id) > ($2::bigint, $3::text)) "
      "ORDER BY created_at, session_id LIMIT $4";
  auto r = pool_.Query(kPage, {P(institution), after ? P(after->created_at) : Param(),
                               after ? P(after->session_id) : Param(), P(limit)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadSession);
}

}  // namespace rdg::storage::pg
