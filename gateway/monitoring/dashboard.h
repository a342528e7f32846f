// The administrators' dashboard served on the monitoring port: one HTML page, its script and
// Chart.js (Debian libjs-chart.js), all compiled into the gateway (no internet access needed),
// and the JSON the page draws, computed from the index on each request.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/config/institution_directory.h"
#include "storage/index/audit_store.h"
#include "storage/index/identity_conflict_store.h"
#include "storage/index/sla_store.h"
#include "storage/index/worklist_store.h"

namespace rdg::monitoring {

//! The page's data for the 24 hours before `now` as JSON, times in `zone`, every id beside its
//! configured name (county_name, queue_name, origin_name):
//!   tat:        hourly p50/p90 of received→final per county (by completion hour)
//!   compliance: share within target per county and stage
//!   queues:     depth, being read, overdue, oldest waiting per configured queue
//!   breaches:   open breaches, most overdue first (at most 100)
//! The index's stores the dashboard reads.
struct DashboardStores {
  storage::SlaStore& sla;
  storage::WorklistStore& worklist;
  storage::AuditStore& audit;
  storage::IdentityConflictStore& identity_conflicts;
};

absl::StatusOr<std::string> DashboardData(const DashboardStores& stores,
                                          const config::InstitutionDirectory& directory,
                                          const std::vector<std::string>& queues, absl::Time now,
                                          absl::TimeZone zone);

const std::string& DashboardHtml();
const std::string& DashboardJs();
const std::string& ChartJs();

}  // namespace rdg::monitoring
