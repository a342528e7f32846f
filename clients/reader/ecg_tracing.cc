#include "clients/reader/ecg_tracing.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "clients/reader/ecg_render.h"
#include "storage/formats/ecg_waveform.h"

extern char** environ;

// GCC defines __SANITIZE_ADDRESS__, clang has __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define RDG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RDG_ASAN 1
#endif
#endif

namespace rdg::clients {
namespace {

// Limits of the child: a 12-lead ECG of a few minutes parses and draws in well under a second
// and 100 MB (waveform samples are capped by the parser).
constexpr rlim_t kWorkerCpuSeconds = 30;
constexpr int kWorkerWallSeconds = 60;
// The reason a worker gives is one line; more is not read.
constexpr size_t kMaxReasonBytes = 4096;

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
      return absl::UnavailableError(absl::StrCat("cannot write ", path));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

bool IsPng(const std::string& path) { return absl::EndsWithIgnoreCase(path, ".png"); }

absl::Status CheckOutputName(const std::string& out_path) {
  if (!IsPng(out_path) && !absl::EndsWithIgnoreCase(out_path, ".svg")) {
    return absl::InvalidArgumentError("--out must name a .svg or a .png file");
  }
  return absl::OkStatus();
}

// Starts `/proc/self/exe ecg-worker FILE OUT...` with its stderr on a pipe and waits for it (at
// most kWorkerWallSeconds). OK when it exited 0; otherwise INVALID_ARGUMENT with its reason or
// how it died.
absl::Status RunWorker(const std::string& dicom_path, const std::vector<std::string>& out_paths) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot start the ECG renderer: ", strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {"rdg-reader", kEcgWorkerCommand, dicom_path};
  args.insert(args.end(), out_paths.begin(), out_paths.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "ASAN_OPTIONS=")) env_strings.emplace_back(*e);
  }
#if defined(RDG_ASAN)
  // A crash must end the worker by its signal, as in a normal build (ASan would exit 1).
  const char* asan = getenv("ASAN_OPTIONS");
  env_strings.push_back(absl::StrCat("ASAN_OPTIONS=", asan != nullptr ? asan : "",
                                     asan != nullptr ? ":" : "", "handle_segv=0"));
#else
  if (const char* asan = getenv("ASAN_OPTIONS"))
    env_strings.push_back(absl::StrCat("ASAN_OPTIONS=", asan));
#endif
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int spawned =
      posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return absl::UnavailableError(
        absl::StrCat("cannot start the ECG renderer: ", strerror(spawned)));
  }
  // Read its reason until it closes stderr (it exits) or the time is up.
  std::string reason;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kWorkerWallSeconds);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = ready == 0;
      break;
    }
    char buf[512];
    const ssize_t n = read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (reason.size() < kMaxReasonBytes) reason.append(buf, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const bool succeeded = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!succeeded) {  // a worker that died while writing leaves its temporary file
    for (const auto& out : out_paths) {
      std::error_code ignored;
      std::filesystem::remove(out + ".part", ignored);
    }
  }
  if (timed_out) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ECG could not be drawn safely: the renderer took longer than ",
                     kWorkerWallSeconds, " s"));
  }
  if (succeeded) return absl::OkStatus();
  // Under the address-space limit an allocation fails: std::bad_alloc, then abort().
  if (absl::StrContains(reason, "std::bad_alloc")) {
    return absl::InvalidArgumentError(
        "the ECG could not be drawn safely: the renderer needed more memory than allowed");
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGXCPU || sig == SIGKILL) {
      return absl::InvalidArgumentError(
          "the ECG could not be drawn safely: the renderer used more CPU time than allowed");
    }
    const char* name = sigabbrev_np(sig);
    return absl::InvalidArgumentError(absl::StrCat(
        "the ECG could not be drawn safely: the renderer crashed (",
        name != nullptr ? absl::StrCat("SIG", name) : absl::StrCat("signal ", sig), ")"));
  }
  // The reason is the worker's last line (DCMTK may log before it).
  reason = std::string(absl::StripAsciiWhitespace(reason.substr(0, kMaxReasonBytes)));
  if (const size_t nl = reason.rfind('\n'); nl != std::string::npos) reason.erase(0, nl + 1);
  return absl::InvalidArgumentError(reason.empty() ? "the ECG renderer failed" : reason);
}

}  // namespace

absl::Status RenderEcgFile(const std::string& dicom_path, const std::string& out_path) {
  if (auto s = CheckOutputName(out_path); !s.ok()) return s;
  return RunWorker(dicom_path, {out_path});
}

absl::StatusOr<std::vector<std::string>> WriteEcgTracings(const std::string& dicom_path,
                                                          const std::string& base) {
  std::vector<std::string> paths = {base + ".svg", base + ".png"};
  if (auto s = RunWorker(dicom_path, paths); !s.ok()) return s;
  return paths;
}

int RunEcgWorker(const std::string& dicom_path, const std::vector<std::string>& out_paths) {
  const rlimit cpu{kWorkerCpuSeconds, kWorkerCpuSeconds + 1};
  const rlimit no_core{0, 0};
  bool limited = setrlimit(RLIMIT_CPU, &cpu) == 0 && setrlimit(RLIMIT_CORE, &no_core) == 0;
#if !defined(RDG_ASAN)  // ASan reserves terabytes of address space up front
  constexpr rlim_t kWorkerMemoryBytes = rlim_t{1} << 30;
  const rlimit memory{kWorkerMemoryBytes, kWorkerMemoryBytes};
  limited = limited && setrlimit(RLIMIT_AS, &memory) == 0;
#endif
  if (!limited) {
    std::cerr << "cannot limit the ECG renderer: " << strerror(errno) << "\n";
    return 1;
  }
  for (const auto& out : out_paths) {
    if (auto s = CheckOutputName(out); !s.ok()) {
      std::cerr << s.message() << "\n";
      return 1;
    }
  }
  absl::StatusOr<formats::EcgRecording> ecg = formats::ParseEcgWaveformFile(dicom_path);
  if (!ecg.ok()) {
    std::cerr << ecg.status().message() << "\n";
    return 1;
  }
  for (const auto& out : out_paths) {
    absl::StatusOr<std::string> bytes = IsPng(out) ? RenderEcgPng(*ecg) : RenderEcgSvg(*ecg);
    absl::Status written = bytes.ok() ? WriteFile(out, *bytes) : bytes.status();
    if (!written.ok()) {
      std::cerr << written.message() << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace rdg::clients
