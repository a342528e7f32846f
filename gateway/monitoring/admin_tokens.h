// Per-administrator tokens for the monitoring port (/metrics, /dashboard): a directory
// (monitoring.token_dir) holding one file per person, NAME.token, mode 0600 — the token (at
// least 32 characters) on its first line and "expires: <RFC 3339 time>" on the next
// (deploy/issue-monitoring-token.sh writes them). A file that is not exactly that, or whose token
// another file also holds, is refused (logged) and its holder with it. Who looked is then a person,
// named in the audit log; a token stops working when it expires or its file is removed. The
// directory is read again at most once a second when asked, so issuing or revoking needs no
// restart.
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

  //! Reads `dir` now: an unreadable directory is an error at start (a bad file is only logged);
  //! a directory that does not exist yet holds no tokens.
  static absl::StatusOr<std::unique_ptr<AdministratorTokens>> Load(std::string dir);

  //! Whose token `presented` is, at `now` (compared in constant time). Re-reads the directory
  //! when the last read is a second old; a directory unreadable since accepts no token.
  Match Find(absl::string_view presented, absl::Time now);

 private:
  struct Entry {
    Holder holder;
    std::string token;
  };
  explicit AdministratorTokens(std::string dir) : dir_(std::move(dir)) {}
  //! Every good token file of `dir`; what is wrong with the others goes to `problems`.
  static absl::StatusOr<std::vector<Entry>> Read(const std::string& dir,
                                                 std::vector<std::string>* problems);
  static absl::StatusOr<Entry> ReadOne(const std::string& path, absl::string_view file);

  const std::string dir_;
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::Time read_at_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);  //!< what was last logged
};

}  // namespace rdg::monitoring
