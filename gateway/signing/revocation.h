// Certificates the platform CA has revoked: the CRLs of tls.crl_file (PEM, one or more in the
// file), each verified against the platform CA. The gateway asks on every TLS handshake, every
// call and every report signature; the file is re-read when it changes (looked at, at most once a
// second, when asked) and on Reload() (SIGHUP), so revoking a reader takes effect within a second
// or two without a restart.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rdg::signing {

class RevocationList {
 public:
  //! Reads `crl_file` (none: an empty list that never changes). INVALID_ARGUMENT when the file
  //! holds no CRL, a CRL is not signed by a certificate of `ca_pem`, or cannot be read.
  static absl::StatusOr<std::unique_ptr<RevocationList>> Open(std::string crl_file,
                                                              absl::string_view ca_pem);
  ~RevocationList();

  //! When the certificate (PEM) was revoked, if its serial is on a CRL of its issuer. Re-reads
  //! the file first if it changed (looked at once a second at most); a file that no longer reads
  //! keeps the last good list (and is logged). Thread-safe.
  std::optional<absl::Time> RevokedAt(absl::string_view cert_pem) ABSL_LOCKS_EXCLUDED(mu_);
  //! The same for a certificate's key from KeyOf (nothing to parse: callers that see one
  //! certificate on many calls keep its key).
  std::optional<absl::Time> RevokedAtKey(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  //! What a certificate (PEM) is listed under: its issuer and serial number; "" if it does not
  //! parse (never revoked).
  static std::string KeyOf(absl::string_view cert_pem);

  //! Reads the file again now. On error the list stays as it was and the error is returned.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  //! Revoked serials known now, over all CRLs.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Impl;
  RevocationList(std::string crl_file, std::unique_ptr<Impl> impl);
  //! The file's identity (inode, size, modification time), to notice a change.
  std::string FileStamp() const;
  void ReloadIfChanged() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string crl_file_;
  const std::unique_ptr<Impl> impl_;  //!< the CA certificates the CRLs must be signed by
  mutable absl::Mutex mu_;
  //! issuer (one-line DN) + "/" + serial (hex) → revocation time
  absl::flat_hash_map<std::string, absl::Time> revoked_ ABSL_GUARDED_BY(mu_);
  std::string stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time last_look_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace rdg::signing
