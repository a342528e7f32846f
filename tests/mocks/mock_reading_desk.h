// gMock of worklist::ReadingDesk, for the reading service and the report desk's unit tests.
#pragma once

#include <gmock/gmock.h>

#include "gateway/worklist/reading_desk.h"

namespace rdg::worklist {

class MockReadingDesk : public ReadingDesk {
 public:
  MOCK_METHOD(absl::StatusOr<storage::WorklistPage>, Worklist,
              (const auth::Principal&, storage::WorklistQuery), (override));
  MOCK_METHOD(absl::StatusOr<storage::ClaimRecord>, Claim,
              (const auth::Principal&, const std::string&, bool, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<storage::ClaimRecord>, Renew,
              (const auth::Principal&, const std::string&), (override));
  MOCK_METHOD(absl::Status, Release, (const auth::Principal&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<storage::ObjectRecord>>, OpenForFetch,
              (const auth::Principal&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<int>, ExpireLeases, (), (override));
  MOCK_METHOD(absl::StatusOr<storage::ExamRecord>, Escalate,
              (const auth::Principal&, const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<int>, EscalateOverdue, (), (override));
  MOCK_METHOD(absl::StatusOr<PriorsView>, Priors,
              (const auth::Principal&, const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<storage::ExamRecord>, ExamInContextOfWork,
              (const auth::Principal&, const std::string&, absl::string_view, const std::string&),
              (override));
  MOCK_METHOD(std::string, SigningDesk, (const auth::Principal&, const std::string&),
              (const, override));
  MOCK_METHOD(absl::StatusOr<storage::ExamRecord>, ExamInReadersQueues,
              (const auth::Principal&, const std::string&), (override));
};

}  // namespace rdg::worklist
