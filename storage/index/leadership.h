// Leadership: which of the gateways on one index runs the housekeeping that must run once per
// index — lease expiry, SLA breach detection, escalation, audit checkpoints, expired uploads —
// while every gateway runs its own (storage checks, metrics, its streams).
#pragma once

namespace rdg::storage {

class Leadership {
 public:
  virtual ~Leadership() = default;
  //! Whether this gateway leads now. One that does not tries to become the leader (the previous
  //! one stopped, died or lost the database); one that did and cannot prove it still does (its
  //! database connection lost) does not. Thread-safe.
  virtual bool Leads() = 0;
};

//! The only gateway of its index (SQLite in its data dir): it always leads.
class SoleLeadership final : public Leadership {
 public:
  bool Leads() override { return true; }
};

}  // namespace rdg::storage
