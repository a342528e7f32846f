// rdg-sim: fills a gateway with a simulated day (or more) of a county medical community: clinics
// and vans upload, readers read and sign, clinics acknowledge — for demos of the dashboard and for
// load tests. See simulation.h for the model and README.md ("Administrators") for a walk-through.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "clients/sim/simulation.h"
#include "storage/base/version.h"

namespace {

constexpr int kExitUsage = 2;

//! "CT=20,DX=30" → {CT: 20, DX: 30}; false when malformed.
bool ParseWeights(const std::string& text, std::map<std::string, double>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    double v = 0;
    if (kv.first.empty() || !absl::SimpleAtod(kv.second, &v) || v < 0) return false;
    (*out)[kv.first] = v;
  }
  return !out->empty();
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rdg-sim: a compressed-time day of clinics uploading, readers signing and clinics "
      "acknowledging, against a real gateway started with --clock-offset-file"};
  app.set_version_flag("--version", rdg::VersionLine("rdg-sim"));
  rdg::sim::Options o;
  o.gateway = Env("RDG_GATEWAY");
  o.ca = Env("RDG_CA");
  std::string pki = "var/pki", mix, read_minutes;
  std::vector<std::string> clinics = {"clinic-a1", "clinic-a2", "van-a1", "clinic-b1"};
  std::vector<std::string> readers = {"reader-a-rad", "reader-a-ecg-tls:reader-a-ecg",
                                      "reader-a-lab", "reader-b-rad", "reader-city-rad"};
  o.templates = "/usr/lib/python3/dist-packages/pydicom/data/test_files";
  app.add_option("--gateway", o.gateway, "HOST:PORT of the gateway (RDG_GATEWAY)");
  app.add_option("--ca", o.ca, "platform CA certificate (RDG_CA; default PKI/ca.pem)");
  app.add_option("--pki", pki, "directory holding NAME.pem and NAME.key of every actor")
      ->capture_default_str();
  app.add_option("--clinic", clinics, "a clinic or van (certificate NAME), repeatable")
      ->capture_default_str();
  app.add_option("--reader", readers,
                 "a reader: NAME, or TLSNAME:SIGNNAME when the signing key differs (SM2), "
                 "repeatable")
      ->capture_default_str();
  app.add_option("--clock-offset-file", o.clock_offset_file,
                 "the gateway's --clock-offset-file: the simulator moves its clock");
  app.add_option("--speed", o.speed, "simulated seconds per real second (1 without a clock file)")
      ->capture_default_str();
  app.add_option("--hours", o.hours, "simulated hours of arrivals")->capture_default_str();
  app.add_option("--exams-per-day", o.exams_per_day, "exams a day over all clinics")
      ->capture_default_str();
  app.add_option("--mix", mix,
                 "relative shares of exam types, e.g. CT=20,DX=30,US=15,ECG=20,LAB=15");
  app.add_option("--read-minutes", read_minutes,
                 "mean reading minutes per exam type, e.g. CT=15,DX=6,US=8,ECG=5,LAB=3");
  app.add_option("--stat-share", o.stat_share, "share of STAT exams")->capture_default_str();
  app.add_option("--urgent-share", o.urgent_share, "share of URGENT exams")->capture_default_str();
  app.add_option("--pickup-minutes", o.pickup_minutes,
                 "mean minutes before a reader takes a routine exam (urgent x0.4, STAT x0.1)")
      ->capture_default_str();
  app.add_option("--ack-minutes", o.ack_minutes,
                 "mean minutes before a clinic acknowledges a report (critical x0.15)")
      ->capture_default_str();
  app.add_option("--critical-share", o.critical_share, "share of reports flagged critical")
      ->capture_default_str();
  app.add_option("--desks", o.desks, "exams each reader reads at once")->capture_default_str();
  app.add_option("--templates", o.templates,
                 "directory with CT_small.dcm and waveform_ecg.dcm (pydicom's test files)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "random seed (same seed, same day)")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  // What a tool writes (reports, images, PDFs, exports) holds patient data: owner only.
  ::umask(077);
  if (o.gateway.empty()) {
    std::cerr << "rdg-sim: give --gateway HOST:PORT (or RDG_GATEWAY)\n";
    return kExitUsage;
  }
  if (o.ca.empty()) o.ca = pki + "/ca.pem";
  if (!mix.empty() && !ParseWeights(mix, &o.mix)) {
    std::cerr << "rdg-sim: --mix takes TYPE=WEIGHT pairs separated by commas, not '" << mix
              << "'\n";
    return kExitUsage;
  }
  if (!read_minutes.empty() && !ParseWeights(read_minutes, &o.read_minutes)) {
    std::cerr << "rdg-sim: --read-minutes takes TYPE=MINUTES pairs separated by commas\n";
    return kExitUsage;
  }
  if (o.speed <= 0 || o.hours <= 0 || o.exams_per_day <= 0 || o.desks <= 0) {
    std::cerr << "rdg-sim: --speed, --hours, --exams-per-day and --desks must be positive\n";
    return kExitUsage;
  }
  if (o.speed != 1 && o.clock_offset_file.empty()) {
    std::cerr << "rdg-sim: compressed time (--speed " << o.speed << ") needs the gateway's "
              << "--clock-offset-file; without one use --speed 1\n";
    return kExitUsage;
  }
  if (clinics.empty() || readers.empty()) {
    std::cerr << "rdg-sim: at least one --clinic and one --reader are needed\n";
    return kExitUsage;
  }
  for (const auto& c : clinics) {
    o.clinics.push_back({c, pki + "/" + c + ".pem", pki + "/" + c + ".key", "", ""});
  }
  for (const auto& r : readers) {
    std::pair<std::string, std::string> names = absl::StrSplit(r, absl::MaxSplits(':', 1));
    const std::string signer = names.second.empty() ? names.first : names.second;
    o.readers.push_back({names.first, pki + "/" + names.first + ".pem",
                         pki + "/" + names.first + ".key", pki + "/" + signer + ".pem",
                         pki + "/" + signer + ".key"});
  }
  return rdg::sim::Run(o);
}
