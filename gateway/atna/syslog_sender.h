// Syslog over TLS (RFC 5425) to an audit repository: RFC 5424 messages in octet-counting frames,
// on a TLS connection that verifies the repository's certificate and presents the gateway's.
//
// Delivery is confirmed per batch: after the frames, the sender closes TLS (close_notify) and
// waits for the repository's close_notify in answer. TLS records arrive in order, so that answer
// proves the repository's TLS layer read every frame before it; a batch without it counts as not
// delivered and is sent again (the repository may then see a record twice: the message's
// sequenceId tells).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rdg::atna {

//! One RFC 5424 message: `<85>1 TIME HOST APP PROCID IHE+RFC-3881 [meta sequenceId="SEQ"] BOM
//! MSG` — facility authpriv (10), severity notice (5), the MSGID IHE ATNA uses for DICOM audit
//! messages. `host` and `app` are cut to the RFC's printable-ASCII fields.
std::string SyslogMessage(absl::Time at, absl::string_view host, absl::string_view app, int pid,
                          int64_t sequence_id, absl::string_view msg);

//! RFC 5425 framing: "LENGTH SP MESSAGE".
std::string OctetCountedFrame(absl::string_view message);

struct SyslogTlsOptions {
  std::string host;         //!< the repository's address
  int port = 6514;          //!< RFC 5425's port
  std::string server_name;  //!< what its certificate must name (DNS name or IP); default host
  std::string ca_file;      //!< CA certificates that may have issued its certificate (PEM)
  std::string cert_file;    //!< the gateway's client certificate chain (PEM)
  std::string key_file;     //!< and its key
  absl::Duration timeout = absl::Seconds(10);  //!< connect, each write and the confirmation
};

class SyslogTlsSender {
 public:
  //! Loads the certificates (an unreadable file is an error now, not at the first send).
  static absl::StatusOr<std::unique_ptr<SyslogTlsSender>> Create(const SyslogTlsOptions& options);
  ~SyslogTlsSender();

  //! Connects, sends `frames` and waits for the confirmation; OK only when confirmed.
  //! UNAVAILABLE when the repository cannot be reached or did not confirm.
  absl::Status Deliver(const std::vector<std::string>& frames);

 private:
  struct Impl;
  explicit SyslogTlsSender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdg::atna
