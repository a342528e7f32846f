#include "storage/postgres/pg_index_store.h"

#include <utility>

#include "storage/postgres/pg_migrate.h"

namespace rdg::storage::pg {

absl::StatusOr<std::unique_ptr<PostgresIndexStore>> PostgresIndexStore::Open(
    Pool::Options options) {
  auto pool = Pool::Open(std::move(options));
  if (!pool.ok()) return pool.status();
  if (absl::Status s = Migrate(**pool); !s.ok()) return s;
  return std::make_unique<PostgresIndexStore>(*std::move(pool));
}

PostgresIndexStore::PostgresIndexStore(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}

absl::StatusOr<int64_t> PostgresIndexStore::SnapshotTo(const std::string& path) {
  (void)path;
  return absl::FailedPreconditionError(
      "the index is on PostgreSQL: back it up with pg_dump (or pg_basebackup and WAL archiving "
      "for point-in-time recovery), and the blob store with the data directory's backup");
}

}  // namespace rdg::storage::pg
