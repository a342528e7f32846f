// SessionStore on the PostgreSQL index: upload sessions any replica can resume. The quota of
// open sessions per institution holds across replicas: the count and the insert run under an
// advisory lock of the institution, in one transaction.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "storage/index/session_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgSessionStore : public SessionStore {
 public:
  explicit PgSessionStore(Pool& pool) : pool_(pool) {}

  absl::Status CreateSession(const UploadSessionRecord& session, int max_per_institution) override;
  absl::StatusOr<std::optional<UploadSessionRecord>> GetSession(
      const std::string& session_id) override;
  absl::StatusOr<std::optional<UploadSessionRecord>> FindSession(const std::string& institution,
                                                                 const std::string& sha256_hex,
                                                                 int64_t size) override;
  absl::StatusOr<int> CountSessions(const std::string& institution) override;
  absl::Status TouchSession(const std::string& session_id, absl::Time at) override;
  absl::Status DeleteSession(const std::string& session_id) override;
  absl::StatusOr<std::vector<UploadSessionRecord>> ListSessions() override;
  absl::StatusOr<std::vector<UploadSessionRecord>> ListSessionsOf(
      const std::string& institution, const std::optional<SessionCursor>& after,
      int limit) override;

 private:
  Pool& pool_;
};

}  // namespace rdg::storage::pg
