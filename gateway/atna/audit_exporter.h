// Sends every audit record, as it happens, to an external audit repository (IHE ATNA): each
// record as a DICOM audit message (dicom_audit_message.h) in a syslog/TLS frame
// (syslog_sender.h), in seq order, in batches the repository confirms.
//
// The audit log is the durable queue. The index keeps, per repository, the last seq it confirmed
// (audit_export); a thread looks for newer records every second and sends them. While the
// repository is down nothing moves and the records wait in the log (retries back off to 30 s);
// after a restart the gateway carries on from the confirmed seq. Nothing is dropped: a batch is
// sent again until it is confirmed (so a repository may see a record twice, never miss one).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/atna/dicom_audit_message.h"
#include "gateway/atna/syslog_sender.h"
#include "gateway/common/clock.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"

namespace rdg::atna {

class AuditExporter {
 public:
  struct Options {
    SyslogTlsOptions repository;
    AuditSource source;
    int batch_records = 500;
    absl::Duration poll = absl::Seconds(1);          //!< how often new records are looked for
    absl::Duration max_backoff = absl::Seconds(30);  //!< the longest wait between failed tries
    //! Several gateways on one index: whether this one leads (only the leader exports, from
    //! where the index says the repository confirmed); none: always.
    std::function<bool()> leads;
  };
  //! What /metrics shows.
  struct Figures {
    int64_t exported_seq = 0;  //!< the last record the repository confirmed
    int64_t failures = 0;      //!< batches not confirmed since the start
    std::optional<absl::Time> last_delivery;
  };

  //! The index's stores it uses.
  struct Stores {
    storage::AuditStore& audit;
    storage::ExamStore& exams;
  };
  //! Loads the certificates and starts the thread. The stores and `clock` must outlive it.
  static absl::StatusOr<std::unique_ptr<AuditExporter>> Start(Stores stores, Options options,
                                                              const Clock& clock);
  ~AuditExporter();  //!< stops the thread; a batch in flight ends within the send timeout

  //! "host:port": the repository's key in the index.
  const std::string& destination() const { return destination_; }
  Figures figures() const;

 private:
  AuditExporter(Stores stores, Options options, const Clock& clock,
                std::unique_ptr<SyslogTlsSender> sender);
  void Loop();
  //! Sends everything after the confirmed seq, batch by batch.
  absl::Status ExportPending();
  //! The frame of one record; `exams` keeps what the index said of each exam in the batch.
  std::string Frame(const storage::AuditRecord& record,
                    absl::flat_hash_map<std::string, ExamFacts>& exams);

  const Stores stores_;
  const Options options_;
  const Clock& clock_;
  const std::unique_ptr<SyslogTlsSender> sender_;
  const std::string destination_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Figures figures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace rdg::atna
