#include "storage/postgres/pg_migrate.h"

#include "absl/strings/str_cat.h"
#include "storage/base/version.h"
#include "storage/migrations.h"

namespace rdg::storage::pg {
namespace {

// pg_advisory_xact_lock's key for RDG's migrations (any fixed number; other locks hash text).
constexpr char kLock[] = "SELECT pg_advisory_xact_lock(29097431237915250)";

}  // namespace

absl::Status Migrate(Pool& pool) {
  return pool.InTransaction("READ COMMITTED", [](Connection& conn) -> absl::Status {
    if (auto s = conn.Exec(kLock); !s.ok()) return s.status();
    // Created only when missing: a role that may read and write but not create still starts.
    static constexpr char kExists[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";
    auto exists = conn.Exec(kExists);
    if (!exists.ok()) return exists.status();
    if (exists->Text(0, 0) != "t") {
      if (auto s = conn.Run("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                            "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
          !s.ok()) {
        return s;
      }
    }
    static constexpr char kCurrent[] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
    auto current = conn.Exec(kCurrent);
    if (!current.ok()) return current.status();
    const int64_t have = current->Int(0, 0);
    const auto& all = PostgresMigrations();
    if (absl::Status s = NewerSchemaError(have, all, ReleaseVersion()); !s.ok()) return s;
    static constexpr char kApplied[] =
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)";
    for (const Migration& m : all) {
      if (m.version <= have) continue;
      if (auto s = conn.Run(std::string(m.sql)); !s.ok()) {
        return absl::InternalError(absl::StrCat("migration ", m.name, " failed: ", s.message()));
      }
      if (auto s = conn.Exec(kApplied, {P(m.version), P(m.name), P(absl::Now())}); !s.ok()) {
        return s.status();
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace rdg::storage::pg
