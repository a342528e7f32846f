// A clock for testing the real binary: wall-clock time shifted by a number of seconds read from a
// file on every call, so an integration test moves the gateway's time (leases, SLA deadlines,
// escalation) by rewriting the file instead of sleeping. Enabled only by --clock-offset-file.
#pragma once

#include <fstream>
#include <string>

#include "gateway/common/clock.h"

namespace rdg {

class OffsetFileClock final : public Clock {
 public:
  explicit OffsetFileClock(std::string path) : path_(std::move(path)) {}
  absl::Time Now() const override {
    std::ifstream in(path_);
    double seconds = 0;
    if (!(in >> seconds)) seconds = 0;  // missing or empty file: no offset
    return absl::Now() + absl::Seconds(seconds);
  }

 private:
  const std::string path_;
};

}  // namespace rdg
