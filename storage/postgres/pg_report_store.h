// ReportStore on the PostgreSQL index. Adding a version locks the exam's row (its claim, state
// and versions are read and changed under it); report numbers (the clinics' feed cursor) come
// from feed_heads 'reports', locked until the commit, so the feed follows commit order across
// gateways and a clinic reading it never skips a report that commits late.
#pragma once

#include <string>
#include <vector>

#include "storage/index/report_store.h"
#include "storage/postgres/pg_pool.h"

//! The channel on which a signed report's commit is announced (payload: the origin institution).
#define RDG_REPORTS_CHANNEL "rdg_reports"

namespace rdg::storage::pg {

//! A row of RDG_REPORT_COLUMNS (storage/index/columns.h).
ReportRecord ReadReport(const Result& r, int row);

class PgReportStore : public ReportStore {
 public:
  explicit PgReportStore(Pool& pool) : pool_(pool) {}

  absl::StatusOr<ReportRecord> AddReport(ReportRecord report, absl::Time now) override;
  absl::StatusOr<std::vector<ReportRecord>> ListReports(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ReportRecord>> ReportFeed(const std::string& institution,
                                                       int64_t after_seq, int32_t limit) override;
  absl::Status MarkDelivered(const std::vector<std::string>& report_ids, absl::Time now) override;
  absl::StatusOr<ReportRecord> AcknowledgeReport(const std::string& report_id,
                                                 const std::string& institution,
                                                 const std::string& user, absl::Time now) override;

 private:
  Pool& pool_;
};

}  // namespace rdg::storage::pg
