// Time is injected everywhere a deadline, lease, expiry or SLA is computed, so tests advance a
// fake clock instead of sleeping.
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rdg {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

//! The wall clock.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace rdg
