// rdg-sim: a day of a county medical community against a real gateway, with time compressed.
// Clinics and vans upload a daily mix of CT/DX/US/ECG/lab exams (Poisson arrivals, busier in the
// daytime), readers take exams from their worklists, read them and sign final reports, clinics
// acknowledge delivered reports. Everything goes through the public API with each actor's own
// certificate, exactly as the real clients do.
//
// Compressed time: the gateway must run with --clock-offset-file FILE (its test clock); the
// simulator owns that file and moves the gateway's clock `speed` times as fast as the wall clock,
// continuing from whatever offset the file already holds (a second run never goes back in time).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace rdg::sim {

struct Identity {
  std::string name;                 //!< for messages
  std::string cert, key;            //!< TLS client certificate
  std::string sign_cert, sign_key;  //!< readers: the report signing pair (may differ: SM2)
};

struct Options {
  std::string gateway;  //!< HOST:PORT
  std::string ca;
  std::vector<Identity> clinics;
  std::vector<Identity> readers;
  std::string clock_offset_file;  //!< required when speed != 1
  double speed = 720;             //!< simulated seconds per real second
  double hours = 24;              //!< simulated duration of arrivals
  double exams_per_day = 600;     //!< over all clinics
  std::map<std::string, double> mix = {
      {"CT", 20}, {"DX", 30}, {"US", 15}, {"ECG", 20}, {"LAB", 15}};
  double stat_share = 0.08, urgent_share = 0.2;
  std::map<std::string, double> read_minutes = {
      {"CT", 15}, {"DX", 6}, {"US", 8}, {"ECG", 5}, {"LAB", 3}};
  double pickup_minutes = 25;  //!< routine; urgent ×0.4, STAT ×0.1
  double ack_minutes = 40;     //!< clinics acknowledging; critical results ×0.15
  double critical_share = 0.03;
  int desks = 2;          //!< exams one reader reads at once
  std::string templates;  //!< directory with CT_small.dcm and waveform_ecg.dcm
  uint32_t seed = 1;
};

struct Totals {
  std::atomic<int64_t> uploaded{0}, upload_failures{0}, claimed{0}, reported{0}, report_failures{0},
      acknowledged{0};
};

//! Simulated time: the gateway's clock, moved by rewriting the offset file.
class SimClock {
 public:
  //! Reads the file's current offset (0 if none) and starts from there.
  SimClock(std::string offset_file, double speed);
  absl::Time Now() const;
  //! Writes the offset for the current moment (called often by a thread of its own).
  void Publish() const;
  //! Sleeps until simulated time `t` (returns at once if it passed).
  void SleepUntil(absl::Time t) const;
  //! The real duration of `simulated`.
  absl::Duration Real(absl::Duration simulated) const { return simulated / speed_; }

 private:
  const std::string path_;
  const double speed_;
  double start_offset_ = 0;
  std::chrono::steady_clock::time_point start_steady_;
  absl::Time start_wall_;
};

//! Runs the simulation; returns the process exit code (0 unless the gateway refused the work).
int Run(const Options& options);

}  // namespace rdg::sim
