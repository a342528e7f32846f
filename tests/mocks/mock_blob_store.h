// gMock of storage::BlobStore, for fault injection (e.g. a failing fsync) in ingest tests.
#pragma once

#include <gmock/gmock.h>

#include "storage/blob_store.h"

namespace rdg::storage {

class MockBlobStore : public BlobStore {
 public:
  MOCK_METHOD(absl::Status, Adopt, (const std::string&, const Digest&), (override));
  MOCK_METHOD(absl::StatusOr<std::unique_ptr<BlobReader>>, Open, (const Digest&),
              (const, override));
  MOCK_METHOD(bool, Exists, (const Digest&), (const, override));
  MOCK_METHOD(absl::Status, Remove, (const Digest&), (override));
};

}  // namespace rdg::storage
