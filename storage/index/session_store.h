// SessionStore: upload sessions, persisted so that uploads resume across restarts (and, with a
// shared index, on another gateway).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

//! CreateSession's refusal when `institution` already has `max` open upload sessions.
inline absl::Status SessionQuotaError(const std::string& institution, int max) {
  return absl::ResourceExhaustedError(
      absl::StrCat("institution ", institution, " has ", max, " upload sessions"));
}

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  //! Inserts a new session unless its institution already has `max_per_institution` sessions
  //! (RESOURCE_EXHAUSTED then); the count and the insert are one atomic step.
  virtual absl::Status CreateSession(const UploadSessionRecord& session,
                                     int max_per_institution) = 0;
  virtual absl::StatusOr<std::optional<UploadSessionRecord>> GetSession(
      const std::string& session_id) = 0;
  //! The open session of `institution` for the same content, if any.
  virtual absl::StatusOr<std::optional<UploadSessionRecord>> FindSession(
      const std::string& institution, const std::string& sha256_hex, int64_t size) = 0;
  virtual absl::StatusOr<int> CountSessions(const std::string& institution) = 0;
  virtual absl::Status TouchSession(const std::string& session_id, absl::Time at) = 0;
  virtual absl::Status DeleteSession(const std::string& session_id) = 0;
  virtual absl::StatusOr<std::vector<UploadSessionRecord>> ListSessions() = 0;
  //! Up to `limit` sessions of `institution` after `after`, oldest first.
  virtual absl::StatusOr<std::vector<UploadSessionRecord>> ListSessionsOf(
      const std::string& institution, const std::optional<SessionCursor>& after, int limit) = 0;
};

}  // namespace rdg::storage
