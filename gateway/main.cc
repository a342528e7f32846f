// rdg-gateway: parses flags and config, starts the gateway, waits for SIGTERM/SIGINT.
#include <glog/logging.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "gateway/api/gateway.h"
#include "gateway/auth/principal.h"
#include "gateway/common/offset_clock.h"
#include "gateway/config/gateway_config.h"
#include "storage/base/version.h"
#include "storage/formats/dicom_parser.h"

namespace {

//! Writes the bound ports to `path` atomically (temp file + rename), for scripts and tests: the
//! gRPC port on the first line, the monitoring port (0: disabled) on the second.
bool WriteReadyFile(const std::string& path, int port, int monitoring_port, int dicomweb_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n" << monitoring_port << "\n" << dicomweb_port << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

//! Upload chunks of up to 4 MiB pass through many threads. By default glibc raises its mmap
//! threshold after the first such buffer is freed, so later ones come from per-thread arenas and
//! stay resident: a 2 GB upload peaked at 122 MB. A fixed threshold hands buffers of 256 KiB and
//! more back to the system at once, and few arenas bound what small allocations keep.
void BoundHeap() {
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);
}

//! --check-config: what deploy/issue-certificate.sh checks a new certificate against.
void ListInstitutions(const rdg::v1::GatewayConfig& config) {
  for (const rdg::v1::Institution& i : config.institutions()) {
    std::string roles;
    for (auto role : {rdg::v1::CLINIC, rdg::v1::READER, rdg::v1::ADMIN}) {
      if (!rdg::auth::RoleFitsLevel(role, i.level())) continue;
      if (!roles.empty()) roles += ' ';
      roles += absl::AsciiStrToLower(rdg::v1::Role_Name(role));  // as certificates' OU
    }
    std::cout << i.id() << '\t' << rdg::v1::InstitutionLevel_Name(i.level()) << '\t' << roles
              << '\t' << i.name() << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rdg-gateway: the Remote Diagnosis Gateway server"};
  app.set_version_flag("--version", rdg::VersionLine("rdg-gateway"));
  std::string config_path, listen, data_dir, ready_file, clock_offset_file, monitoring_listen;
  app.add_option("--config", config_path, "gateway configuration (protobuf text format)")
      ->required();
  app.add_option("--listen", listen, "override listen HOST:PORT (port 0 picks a free port)");
  app.add_option("--data-dir", data_dir, "override the data directory");
  app.add_option("--monitoring-listen", monitoring_listen,
                 "override monitoring.listen HOST:PORT (port 0 picks a free port)");
  app.add_option("--ready-file", ready_file, "write the bound port here once serving");
  app.add_option("--clock-offset-file", clock_offset_file,
                 "testing only: shift the gateway's clock by the seconds written in this file");
  bool check_config = false;
  app.add_flag("--check-config", check_config,
               "validate the configuration, list its institutions (id, level, the roles their "
               "certificates may carry, name; tab-separated) and exit");
  CLI11_PARSE(app, argc, argv);
  // Everything the gateway creates (index, blobs, staged uploads, tokens) is its own: whatever
  // umask the service was started with, no file is group- or world-readable.
  ::umask(077);

  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  // Client connections, upload part files and monitoring connections are descriptors: use the
  // hard limit (up to 65,536), not the 1,024 a login shell or a plain service starts with.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0) {
    const rlim_t wanted = std::min<rlim_t>(files.rlim_max, 65536);
    if (wanted > files.rlim_cur) {
      files.rlim_cur = wanted;
      setrlimit(RLIMIT_NOFILE, &files);
    }
  }
  BoundHeap();

  // Block the stop signals before any thread starts so that only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // not a stop: re-read tls.crl_file
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = rdg::config::LoadConfigFile(config_path, {listen, data_dir, monitoring_listen});
  if (!config.ok()) {
    std::cerr << "rdg-gateway: invalid configuration:\n" << config.status().message() << "\n";
    return 2;
  }
  if (check_config) {
    ListInstitutions(*config);
    return 0;
  }
  if (auto s = rdg::formats::InitDicomToolkit(); !s.ok()) {
    std::cerr << "rdg-gateway: " << s.message() << "\n";
    return 1;
  }
  rdg::RealClock real_clock;
  rdg::OffsetFileClock offset_clock(clock_offset_file);
  const rdg::Clock& clock =
      clock_offset_file.empty() ? static_cast<const rdg::Clock&>(real_clock) : offset_clock;
  if (!clock_offset_file.empty()) {
    LOG(WARNING) << "test clock: time is shifted by the seconds in " << clock_offset_file;
  }
  auto gateway = rdg::api::Gateway::Start(*config, clock);
  if (!gateway.ok()) {
    std::cerr << "rdg-gateway: cannot start: " << gateway.status().message() << "\n";
    return 1;
  }
  LOG(INFO) << "rdg-gateway serving mTLS on port " << (*gateway)->port() << ", data dir "
            << config->data_dir();
  if ((*gateway)->dicomweb_port() > 0) {
    LOG(INFO) << "DICOMweb (QIDO-RS, WADO-RS) on https port " << (*gateway)->dicomweb_port()
              << ", path /dicomweb";
  }
  if ((*gateway)->monitoring_port() > 0) {
    LOG(INFO) << "monitoring (/metrics, /healthz, /readyz, /dashboard) on "
              << (config->monitoring().tls() ? "https" : "http") << " port "
              << (*gateway)->monitoring_port();
  }
  if (!ready_file.empty() &&
      !WriteReadyFile(ready_file, (*gateway)->port(), (*gateway)->monitoring_port(),
                      (*gateway)->dicomweb_port())) {
    std::cerr << "rdg-gateway: cannot write ready file " << ready_file << "\n";
    return 1;
  }
  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) {
    if (absl::Status s = (*gateway)->ReloadRevocations(); !s.ok()) {
      LOG(WARNING) << "SIGHUP: keeping the last revocation list: " << s.message();
    } else {
      LOG(INFO) << "SIGHUP: revocation list re-read";
    }
  }
  LOG(INFO) << "received " << strsignal(signal_number) << ", shutting down";
  (*gateway)->Shutdown(absl::Seconds(config->shutdown_grace_seconds()));
  gateway->reset();
  LOG(INFO) << "stopped";
  return 0;
}
