// Schema migrations, embedded from storage/migrations/<backend>/NNNN_name.sql at build time.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rdg::storage {

struct Migration {
  int version;
  absl::string_view name;
  absl::string_view sql;
};

//! SQLite migrations in version order (defined by rdg_storage).
const std::vector<Migration>& SqliteMigrations();
//! PostgreSQL migrations in version order (defined by rdg_postgres).
const std::vector<Migration>& PostgresMigrations();

//! The refusal of an index whose schema version `have` is newer than `migrations` know: a newer
//! release wrote it. `release`: this binary's (ReleaseVersion()).
inline absl::Status NewerSchemaError(int64_t have, const std::vector<Migration>& migrations,
                                     absl::string_view release) {
  const int known = migrations.empty() ? 0 : migrations.back().version;
  if (have <= known) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the index has schema version ", have, ", newer than this binary's ", known, " (rdg ",
      release,
      "): a newer rdg-gateway wrote it; run that version or restore the backup taken before the "
      "upgrade"));
}

}  // namespace rdg::storage
