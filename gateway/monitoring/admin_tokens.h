// Per-administrator tokens for the monitoring port (/metrics, /dashboard): a directory
// (monitoring.token_dir) holding one file per person, NAME.token — the token (at least 32
// characters) on its first line and, optionally, "expires: <RFC 3339 time>" on a later one
// (deploy/issue-monitoring-token.sh writes them). Who looked is then a person, named in the audit
// log; a token stops working when it expires or its file is removed. The directory is read again
// at most once a second when asked, so issuing or revoking needs no restart.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rdg::monitoring {

class AdministratorTokens {
 public:
  struct Holder {
    std::string name;  //!< the file's name without ".token"
    std::optional<absl::Time> expires;
  };
  enum class Verdict { kValid, kExpired, kUnknown };
  struct Match {
    Verdict verdict = Verdict::kUnknown;
    Holder holder;  //!< set unless kUnknown
  };

  //! Reads `dir` now: an unreadable directory or a malformed token file is an error at start; a
  //! directory that does not exist yet holds no tokens.
  static absl::StatusOr<std::unique_ptr<AdministratorTokens>> Load(std::string dir);

  //! Whose token `presented` is, at `now` (compared in constant time). Re-reads the directory
  //! when the last read is a second old; a directory broken since keeps the last good tokens.
  Match Find(absl::string_view presented, absl::Time now);

 private:
  struct Entry {
    Holder holder;
    std::string token;
  };
  explicit AdministratorTokens(std::string dir) : dir_(std::move(dir)) {}
  static absl::StatusOr<std::vector<Entry>> Read(const std::string& dir);

  const std::string dir_;
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::Time read_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdg::monitoring
