// Index records → API messages.
#pragma once

#include <google/protobuf/duration.pb.h>

#include "rdg/v1/common.pb.h"
#include "rdg/v1/delivery.pb.h"
#include "rdg/v1/reading.pb.h"
#include "storage/records.h"

namespace rdg::api {

google::protobuf::Timestamp ToTimestamp(absl::Time t);
google::protobuf::Duration ToDurationProto(absl::Duration d);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);
rdg::v1::Exam ToProto(const storage::ExamRecord& record);
rdg::v1::StoredObject ToProto(const storage::ObjectRecord& record);
rdg::v1::ExamEvent ToProto(const storage::ExamEventRecord& record);
rdg::v1::LabResult ToProto(const storage::LabResultRecord& record);
rdg::v1::ReportVersion ToProto(const storage::ReportRecord& record);
rdg::v1::DeliveredReport ToDelivered(const storage::ReportRecord& record);

}  // namespace rdg::api
