// gMock of storage::BlobStore, for fault injection (e.g. a failing fsync) in ingest tests.
#pragma once

#include <gmock/gmock.h>

#include <memory>

#include "storage/blob_store.h"

namespace rdg::storage {

class MockBlobStore : public BlobStore {
 public:
  MOCK_METHOD(absl::Status, Adopt, (const std::string&, const Digest&), (override));
  MOCK_METHOD(absl::StatusOr<std::unique_ptr<BlobReader>>, Open, (const Digest&),
              (const, override));
  MOCK_METHOD(bool, Exists, (const Digest&), (const, override));
  MOCK_METHOD(absl::Status, Remove, (const Digest&), (override));
  MOCK_METHOD(absl::StatusOr<std::unique_ptr<Hold>>, HoldBlob, (const Digest&), (override));
  MOCK_METHOD(absl::StatusOr<bool>, RemoveUnreferenced,
              (const Digest&, absl::FunctionRef<absl::StatusOr<bool>()>), (override));

  //! Defaults for a store nothing else removes from: every hold is given, nothing is removed.
  MockBlobStore() {
    ON_CALL(*this, HoldBlob).WillByDefault([](const Digest&) {
      return absl::StatusOr<std::unique_ptr<Hold>>(std::make_unique<Hold>());
    });
    ON_CALL(*this, RemoveUnreferenced).WillByDefault(::testing::Return(false));
  }
};

}  // namespace rdg::storage
