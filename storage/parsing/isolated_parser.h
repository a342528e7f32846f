// Parses uploaded objects in a pool of pre-started rdg-parser processes. A process that crashes,
// hangs past the timeout or exhausts its memory costs only the object it was parsing: that
// upload is refused with the reason, the process is replaced, every other upload goes on.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rdg/v1/parser.pb.h"
#include "storage/parsing/object_parser.h"
#include "storage/parsing/parser_defaults.h"

namespace rdg::parsing {

class IsolatedParser final : public parsing::ObjectParser {
 public:
  struct Options {
    std::string program;  //!< the rdg-parser binary
    int processes = 2;
    absl::Duration timeout = absl::Seconds(30);
    //! A process whose peak resident memory passed this is replaced after its answer.
    int64_t retire_above_rss_bytes = 128 << 20;
    rdg::v1::ParserSetup setup;  //!< sent to every process as it starts
    //! Above 0: the processes run at this lower CPU priority (as nice(1)).
    int nice = 0;
  };
  //! Starts `options.processes` processes; fails clearly if the program cannot run.
  static absl::StatusOr<std::unique_ptr<IsolatedParser>> Start(Options options);
  ~IsolatedParser() override;  //!< ends every process

  absl::StatusOr<parsing::ParsedObject> Parse(const parsing::ParseJob& job) const override;

  //! Objects whose parser process failed, by how (for /metrics).
  struct Counters {
    std::atomic<int64_t> crashed{0};    //!< killed by a signal (SIGSEGV, SIGABRT, ...)
    std::atomic<int64_t> timed_out{0};  //!< no answer within the timeout, or CPU limit
    std::atomic<int64_t> out_of_memory{0};
    std::atomic<int64_t> restarted{0};  //!< processes started after the first ones
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Process {
    pid_t pid = -1;
    int fd = -1;
  };
  explicit IsolatedParser(Options options) : options_(std::move(options)) {}
  //! Starts a process and waits until it says it is ready.
  absl::StatusOr<Process> Spawn() const;
  //! An idle process, or a new one while fewer than `processes` exist; waits otherwise.
  absl::StatusOr<Process> Acquire() const;
  void Return(Process process) const;
  //! Ends a process (SIGKILL) and reaps it; returns its wait status.
  static int Reap(Process process);
  //! Reaps a process the pool counted.
  int Retire(Process process) const;
  //! The reason given to the clinic when a process failed on an object (and counts it).
  absl::Status Failure(const Process& process, const absl::Status& io) const;

  const Options options_;
  mutable absl::Mutex mu_;
  mutable std::vector<Process> idle_ ABSL_GUARDED_BY(mu_);
  mutable int live_ ABSL_GUARDED_BY(mu_) = 0;  //!< processes started and not yet retired
  mutable Counters counters_;
};

//! True for a refusal because a process gave no answer within the timeout although it had CPU
//! time left: on a loaded machine (a clinic's small computer) that may pass, so the edge agent
//! tells the device to try again rather than refusing the object for good.
bool OnlyOutOfWallClockTime(const absl::Status& status);

//! The rdg-parser program beside the running executable (for the default configuration).
std::string DefaultParserProgram();

//! Starts the pool `config` describes (defaults applied); `critical` flags lab critical values;
//! `nice` above 0 lowers the processes' CPU priority.
absl::StatusOr<std::unique_ptr<IsolatedParser>> StartParserPool(
    rdg::v1::ParserConfig config,
    const google::protobuf::RepeatedPtrField<rdg::v1::CriticalValueRule>& critical = {},
    int nice = 0);

}  // namespace rdg::parsing
