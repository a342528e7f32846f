#include "storage/parsing/isolated_parser.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "storage/parsing/parse_wire.h"

extern char** environ;

namespace rdg::parsing {
namespace {

//! rdg-parser's exit status when an allocation failed under its memory limit.
constexpr int kExitOutOfMemory = 3;

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

//! Signals a parser dies of when the object's bytes drove it into a fault.
bool IsCrashSignal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGILL || sig == SIGFPE;
}

//! How long a new parser process may take to load the dictionary and say it is ready.
constexpr absl::Duration kStartTimeout = absl::Seconds(10);

constexpr char kWallClockTimeoutUrl[] = "rdg.parser/wall-clock-timeout";

absl::Status Unsafe(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("the file could not be parsed safely: ", why,
                   "; the object was not stored. Check the file with the modality's vendor"));
}

}  // namespace

bool OnlyOutOfWallClockTime(const absl::Status& status) {
  return status.GetPayload(kWallClockTimeoutUrl).has_value();
}

std::string DefaultParserProgram() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "rdg-parser";
  return (self.parent_path() / "rdg-parser").string();
}

absl::StatusOr<std::unique_ptr<IsolatedParser>> StartParserPool(
    rdg::v1::ParserConfig config,
    const google::protobuf::RepeatedPtrField<rdg::v1::CriticalValueRule>& critical, int nice) {
  ApplyParserDefaults(config);
  IsolatedParser::Options options;
  options.nice = nice;
  options.program = config.program().empty() ? DefaultParserProgram() : config.program();
  options.processes = config.processes();
  options.timeout = absl::Seconds(config.timeout_seconds());
  *options.setup.mutable_critical_values() = critical;
  *options.setup.mutable_limits() = std::move(config);
  return IsolatedParser::Start(std::move(options));
}

absl::StatusOr<std::unique_ptr<IsolatedParser>> IsolatedParser::Start(Options options) {
  if (options.processes < 1) options.processes = 1;
  std::unique_ptr<IsolatedParser> parser(new IsolatedParser(std::move(options)));
  // Start them all now: a missing or broken program is a start-up error, not a failed upload.
  std::vector<Process> started;
  for (int i = 0; i < parser->options_.processes; ++i) {
    auto process = parser->Spawn();
    if (!process.ok()) {
      for (const Process& p : started) IsolatedParser::Reap(p);
      return process.status();
    }
    started.push_back(*process);
  }
  absl::MutexLock lock(&parser->mu_);
  parser->live_ = static_cast<int>(started.size());
  parser->idle_ = std::move(started);
  return parser;
}

IsolatedParser::~IsolatedParser() {
  std::vector<Process> idle;
  {
    absl::MutexLock lock(&mu_);
    idle.swap(idle_);
  }
  for (const Process& p : idle) Retire(p);
}

absl::StatusOr<IsolatedParser::Process> IsolatedParser::Spawn() const {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::UnavailableError(absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
  // Children of the gateway start with default signal handling, whatever the gateway set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::string program = options_.program;
  char* argv[] = {program.data(), nullptr};
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(sv[1]);
  if (err != 0) {
    ::close(sv[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start the parser program ", program, ": ", std::strerror(err),
                     " (parsing.program; it is built beside rdg-gateway)"));
  }
  Process process{pid, sv[0]};
  // Set here rather than inherited: a replacement is spawned by whichever thread needs one.
  if (options_.nice > 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), options_.nice);
  // The process answers its setup once it is ready (dictionary loaded, limits set): one that
  // cannot start is found here, not blamed on the first object it is given.
  rdg::v1::ParseResponse ready;
  absl::Status s = WriteFrame(process.fd, options_.setup);
  if (s.ok()) s = ReadFrame(process.fd, ready, absl::Now() + kStartTimeout);
  if (!s.ok()) {
    const int status = Reap(process);
    return absl::FailedPreconditionError(
        absl::StrCat("the parser program ", program, " did not start (", s.message(), "; ",
                     WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                                       : absl::StrCat("signal ", WTERMSIG(status)),
                     "); see its messages in the gateway's log"));
  }
  return process;
}

absl::StatusOr<IsolatedParser::Process> IsolatedParser::Acquire() const {
  {
    absl::MutexLock lock(&mu_);
    auto can_go = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || live_ < options_.processes;
    };
    // Waits on a worker-pool thread: bounded, so that a burst of slow objects cannot hold the
    // pool that worklists and deliveries need too.
    if (!mu_.AwaitWithTimeout(absl::Condition(&can_go), options_.timeout)) {
      return absl::UnavailableError("the gateway's parsers are all busy; retry shortly");
    }
    if (!idle_.empty()) {
      Process p = idle_.back();
      idle_.pop_back();
      return p;
    }
    ++live_;
  }
  counters_.restarted.fetch_add(1, std::memory_order_relaxed);
  auto spawned = Spawn();
  if (!spawned.ok()) {
    LOG(ERROR) << spawned.status();
    absl::MutexLock lock(&mu_);
    --live_;
    return absl::UnavailableError("the gateway cannot start a parser process; retry later");
  }
  return spawned;
}

void IsolatedParser::Return(Process process) const {
  absl::MutexLock lock(&mu_);
  idle_.push_back(process);
}

int IsolatedParser::Reap(Process process) {
  ::close(process.fd);
  ::kill(process.pid, SIGKILL);
  int status = 0;
  while (::waitpid(process.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

int IsolatedParser::Retire(Process process) const {
  const int status = Reap(process);
  absl::MutexLock lock(&mu_);
  --live_;
  return status;
}

absl::Status IsolatedParser::Failure(const Process& process, const absl::Status& io) const {
  const bool deadline = absl::IsDeadlineExceeded(io);
  const int status = Retire(process);
  const std::string limit = absl::StrCat(absl::ToInt64Seconds(options_.timeout), " s");
  const bool out_of_cpu = WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU;
  if (deadline || out_of_cpu) {
    counters_.timed_out.fetch_add(1, std::memory_order_relaxed);
    LOG(WARNING) << "parser process " << process.pid << " gave no answer within " << limit;
    absl::Status unsafe =
        Unsafe(absl::StrCat("parsing it took longer than ", limit, " (parsing.timeout_seconds)"));
    // Out of wall-clock time without using up its CPU time: maybe only a busy machine.
    if (!out_of_cpu) unsafe.SetPayload(kWallClockTimeoutUrl, absl::Cord());
    return unsafe;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == kExitOutOfMemory) {
    counters_.out_of_memory.fetch_add(1, std::memory_order_relaxed);
    LOG(WARNING) << "parser process " << process.pid << " reached its memory limit";
    return Unsafe("parsing it needed more memory than allowed (parsing.memory_bytes)");
  }
  if (WIFSIGNALED(status) && IsCrashSignal(WTERMSIG(status))) {
    counters_.crashed.fetch_add(1, std::memory_order_relaxed);
    const std::string how = absl::StrCat("the parser crashed (", SignalName(WTERMSIG(status)), ")");
    LOG(WARNING) << "parser process " << process.pid << ": " << how;
    return Unsafe(how);
  }
  // Killed from outside (an operator, the OOM killer) or ended without a crash: not this
  // object's fault, so the upload is kept and the client retries.
  LOG(ERROR) << "parser process " << process.pid << " ended unexpectedly ("
             << (WIFSIGNALED(status) ? SignalName(WTERMSIG(status))
                                     : absl::StrCat("exit status ", WEXITSTATUS(status)))
             << ", " << io.message() << ")";
  return absl::UnavailableError("the gateway's parser process ended unexpectedly; retry shortly");
}

absl::StatusOr<parsing::ParsedObject> IsolatedParser::Parse(const parsing::ParseJob& job) const {
  rdg::v1::ParseRequest request;
  request.set_kind(job.kind);
  request.set_path(job.path);
  request.set_size(job.size);
  request.set_now_unix_micros(absl::ToUnixMicros(job.now));
  request.set_ack_control_id(job.ack_control_id);
  // A process may have died while idle or been killed meanwhile (by an operator, the OOM
  // killer): that is not this object's fault, so the object goes to the next process, until
  // every idle one was tried and a fresh one too.
  const int attempts = options_.processes + 1;
  for (int attempt = 1;; ++attempt) {
    auto acquired = Acquire();
    if (!acquired.ok()) return acquired.status();
    const Process process = *acquired;
    if (auto s = WriteFrame(process.fd, request); !s.ok()) {
      Retire(process);
      if (attempt < attempts) continue;
      return absl::UnavailableError("the gateway's parser processes are failing; retry shortly");
    }
    rdg::v1::ParseResponse response;
    if (auto s = ReadFrame(process.fd, response, absl::Now() + options_.timeout); !s.ok()) {
      if (absl::IsDataLoss(s)) {  // alive but answering garbage: a bug, not the object's fault
        Retire(process);
        LOG(ERROR) << "parser process " << process.pid << " sent an unreadable answer: " << s;
        return absl::InternalError("the gateway's parser answered something unreadable");
      }
      absl::Status failed = Failure(process, s);
      // A process that ended without the object's doing (killed from outside) gets the
      // object once more, on a fresh process.
      if (absl::IsUnavailable(failed) && attempt < attempts) continue;
      return failed;
    }
    if (response.max_rss_bytes() > options_.retire_above_rss_bytes) {
      Retire(process);  // give its memory back; the next object gets a fresh process
    } else {
      Return(process);
    }
    return FromResponse(response);
  }
}

}  // namespace rdg::parsing
