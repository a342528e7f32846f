#include "gateway/monitoring/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace rdg::monitoring {
namespace {

void Gauge(std::string& out, const char* name, const char* type, const char* help, double value) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                  absl::StrFormat("%.17g", value), "\n");
}

//! Fields of /proc/self/stat after the command (which may hold spaces and parentheses): the
//! first returned is field 3 (state).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const size_t end = line.rfind(')');
  if (end == std::string::npos) return {};
  return absl::StrSplit(line.substr(end + 2), ' ');
}

//! The boot time (Unix seconds) from /proc/stat, 0 if unknown.
int64_t BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  int64_t value = 0;
  while (in >> key) {
    if (key == "btime" && (in >> value)) return value;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

int CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory's own descriptor
}

}  // namespace

void RenderProcessMetrics(std::string& out) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  const std::vector<std::string> f = StatFields();
  // Field n of /proc/self/stat is f[n - 3].
  auto field = [&f](size_t n, double& value) {
    return f.size() > n - 3 && absl::SimpleAtod(f[n - 3], &value);
  };
  double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  if (field(14, utime) && field(15, stime)) {
    Gauge(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds.",
          (utime + stime) / ticks);
  }
  if (field(23, vsize)) {
    Gauge(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
  }
  if (field(24, rss)) {
    Gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
          rss * page);
  }
  if (const int64_t boot = BootTime(); boot > 0 && field(22, start)) {
    Gauge(out, "process_start_time_seconds", "gauge",
          "Start time of the process since the Unix epoch, seconds.",
          static_cast<double>(boot) + start / ticks);
  }
  if (const int fds = CountOpenFds(); fds >= 0) {
    Gauge(out, "process_open_fds", "gauge", "Open file descriptors.", fds);
  }
  if (rlimit limit{}; ::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Gauge(out, "process_max_fds", "gauge", "Limit of open file descriptors.",
          static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace rdg::monitoring
