// Index records → API messages.
#pragma once

#include "rdg/v1/common.pb.h"
#include "storage/records.h"

namespace rdg::api {

google::protobuf::Timestamp ToTimestamp(absl::Time t);
rdg::v1::Exam ToProto(const storage::ExamRecord& record);
rdg::v1::StoredObject ToProto(const storage::ObjectRecord& record);
rdg::v1::ExamEvent ToProto(const storage::ExamEventRecord& record);

}  // namespace rdg::api
