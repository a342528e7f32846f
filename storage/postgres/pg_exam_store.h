// ExamStore and LabResultStore on the PostgreSQL index. CommitObjects is one transaction per
// batch, as on SQLite; since several gateways commit at once, it first takes transaction-scoped
// advisory locks on every (institution, SOP Instance UID) and (institution, Study Instance UID)
// of the batch, in one global order: the check for a stored object and the join of an exam see
// every commit that touched them before, and two batches never wait on each other in a cycle.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "storage/index/exam_store.h"
#include "storage/index/lab_result_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgExamStore : public ExamStore {
 public:
  explicit PgExamStore(Pool& pool) : pool_(pool) {}

  absl::StatusOr<std::optional<ObjectRecord>> FindObject(
      const std::string& institution, const std::string& sop_instance_uid) override;
  absl::StatusOr<std::optional<ObjectRecord>> FindObjectByContent(
      const std::string& institution, const std::string& sha256_hex) override;
  absl::StatusOr<bool> IsBlobReferenced(const std::string& sha256_hex) override;
  std::vector<absl::StatusOr<CommitOutcome>> CommitObjects(
      absl::Span<const NewObject> batch) override;
  absl::StatusOr<ExamPage> ListExams(const ExamQuery& query) override;
  absl::StatusOr<std::optional<ExamRecord>> GetExam(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ExamRecord>> FindExamsByStudy(
      const std::string& study_instance_uid) override;
  absl::StatusOr<std::vector<ObjectRecord>> ListObjects(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ObjectRecord>> ListObjectsPage(
      const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) override;
  absl::StatusOr<std::vector<ExamEventRecord>> ListEvents(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ExamRecord>> FindPriors(const ExamRecord& exam,
                                                     int32_t limit) override;
  absl::StatusOr<std::vector<ExamRecord>> FindLabOrders(const std::string& institution,
                                                        const std::string& accession,
                                                        int32_t limit) override;

 private:
  Pool& pool_;
};

class PgLabResultStore : public LabResultStore {
 public:
  explicit PgLabResultStore(Pool& pool) : pool_(pool) {}

  absl::StatusOr<std::vector<LabResultRecord>> ListLabResults(
      const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) override;

 private:
  Pool& pool_;
};

}  // namespace rdg::storage::pg
