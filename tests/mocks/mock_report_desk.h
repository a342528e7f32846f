// gMock of worklist::ReportDesk, for the reading and delivery services' unit tests.
#pragma once

#include <gmock/gmock.h>

#include "gateway/worklist/report_desk.h"

namespace rdg::worklist {

class MockReportDesk : public ReportDesk {
 public:
  MOCK_METHOD(absl::StatusOr<storage::ReportRecord>, Submit,
              (const auth::Principal&, const rdg::v1::SubmitReportRequest&), (override));
  MOCK_METHOD(absl::StatusOr<ExamReports>, Versions,
              (const auth::Principal&, const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<storage::ReportRecord>>, Feed,
              (const auth::Principal&, int64_t, int32_t), (override));
  MOCK_METHOD(absl::StatusOr<storage::ReportRecord>, Acknowledge,
              (const auth::Principal&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<storage::ReportRecord>, Latest,
              (const auth::Principal&, const std::string&), (override));
  using ExamsById = absl::flat_hash_map<std::string, storage::ExamRecord>;
  MOCK_METHOD(absl::StatusOr<ExamsById>, ExamsOf,
              (const auth::Principal&, const std::vector<storage::ReportRecord>&), (override));
  MOCK_METHOD(int64_t, Subscribe, (const std::string&, std::function<void()>), (override));
  MOCK_METHOD(void, Unsubscribe, (int64_t), (override));
};

}  // namespace rdg::worklist
