// rdg-parser: one parser process of the gateway's pool. It reads a ParserSetup and then
// ParseRequests from fd 3 (a socket pair the gateway made), parses each staged object with the
// same code the gateway would run in-process (parsing::InProcessParser), and answers a
// ParseResponse. It runs with resource limits so that a hostile file can cost only this process:
// address space (parsing.memory_bytes), CPU seconds per object, no file writes, no core dumps,
// few descriptors. The gateway replaces a process that died, hung or grew large.
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

#include "storage/base/version.h"
#include "storage/formats/dicom_parser.h"
#include "storage/parsing/object_parser.h"
#include "storage/parsing/parse_wire.h"

#if defined(__SANITIZE_ADDRESS__)
#define RDG_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RDG_ADDRESS_SANITIZER 1
#endif
#endif

#ifdef RDG_ADDRESS_SANITIZER
// Under AddressSanitizer a crash must still end the process by its signal, as in a normal build,
// so that the gateway reports it the same way (ASan would turn SIGSEGV into exit status 1).
extern "C" const char* __asan_default_options() { return "handle_segv=0:detect_leaks=0"; }
#endif

namespace {

constexpr int kChannel = 3;
//! Exit status when an allocation fails under the address-space limit.
constexpr int kExitOutOfMemory = 3;
constexpr int kExitBadStart = 2;
//! Largest answer sent to the gateway (index rows of one object; a lab panel is kilobytes).
constexpr size_t kMaxAnswerBytes = 8u << 20;

void OutOfMemory() {
  static const char kMessage[] = "rdg-parser: memory limit reached\n";
  (void)!::write(2, kMessage, sizeof(kMessage) - 1);
  ::_exit(kExitOutOfMemory);
}

void SetLimit(int resource, rlim_t soft, rlim_t hard) {
  rlimit l{soft, hard};
  ::setrlimit(resource, &l);
}

//! Limits for the whole life of the process (the per-object CPU limit is set per request).
void LimitProcess(const rdg::v1::ParserConfig& limits) {
  SetLimit(RLIMIT_CORE, 0, 0);
  SetLimit(RLIMIT_FSIZE, 0, 0);  // reads only: a write past 0 bytes raises SIGXFSZ
  SetLimit(RLIMIT_NOFILE, 16, 16);
#ifndef RDG_ADDRESS_SANITIZER  // ASan reserves terabytes of address space up front
  if (limits.memory_bytes() > 0) {
    SetLimit(RLIMIT_AS, static_cast<rlim_t>(limits.memory_bytes()),
             static_cast<rlim_t>(limits.memory_bytes()));
  }
#endif
}

//! Allows `seconds` more CPU time from now (SIGXCPU ends the process past it).
void AllowCpuSeconds(int seconds) {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const rlim_t used = static_cast<rlim_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec);
  SetLimit(RLIMIT_CPU, used + static_cast<rlim_t>(seconds) + 1, RLIM_INFINITY);
}

int64_t PeakRssBytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("%s\n", rdg::VersionLine("rdg-parser").c_str());
    return 0;
  }
  // Only the channel stays open; the process dies with the gateway.
  ::close_range(kChannel + 1, ~0U, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::signal(SIGXFSZ, SIG_IGN);  // a write to a log file then fails (EFBIG) instead of killing us
  if (::getppid() == 1) return kExitBadStart;
  std::set_new_handler(OutOfMemory);
  if (auto s = rdg::formats::InitDicomToolkit(); !s.ok()) {
    std::fprintf(stderr, "rdg-parser: %s\n", std::string(s.message()).c_str());
    return kExitBadStart;
  }
  rdg::v1::ParserSetup setup;
  if (!rdg::parsing::ReadFrame(kChannel, setup, absl::InfiniteFuture()).ok()) return kExitBadStart;
  const rdg::v1::ParserConfig& limits = setup.limits();
  LimitProcess(limits);
  const rdg::parsing::InProcessParser parser(
      rdg::parsing::CriticalValueTable(setup.critical_values()),
      {limits.max_sequence_depth(), limits.max_elements()});
  if (!rdg::parsing::WriteFrame(kChannel, rdg::v1::ParseResponse()).ok()) return kExitBadStart;

  for (;;) {
    rdg::v1::ParseRequest request;
    if (!rdg::parsing::ReadFrame(kChannel, request, absl::InfiniteFuture()).ok()) return 0;
    AllowCpuSeconds(limits.timeout_seconds());
    rdg::parsing::ParseJob job{request.kind(), request.path(), request.size(),
                               absl::FromUnixMicros(request.now_unix_micros()),
                               request.ack_control_id()};
    rdg::v1::ParseResponse response = rdg::parsing::ToResponse(parser.Parse(job));
    if (response.ByteSizeLong() > kMaxAnswerBytes) {
      // A small message that repeats a long field into every result: refused, not sent.
      response = rdg::parsing::ToResponse(absl::InvalidArgumentError(absl::StrCat(
          "the object yields ", response.ByteSizeLong() >> 20, " MiB of index data (at most ",
          kMaxAnswerBytes >> 20, " MiB); shorten its text fields")));
    }
    response.set_max_rss_bytes(PeakRssBytes());
    if (!rdg::parsing::WriteFrame(kChannel, response).ok()) return 0;
  }
}
