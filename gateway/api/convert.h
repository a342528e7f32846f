// Index records → API messages.
#pragma once

#include <google/protobuf/duration.pb.h>

#include "absl/strings/string_view.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/common.pb.h"
#include "rdg/v1/delivery.pb.h"
#include "rdg/v1/reading.pb.h"
#include "storage/records.h"

namespace rdg::api {

google::protobuf::Timestamp ToTimestamp(absl::Time t);
google::protobuf::Duration ToDurationProto(absl::Duration d);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);
//! The exam for the API: text as valid UTF-8, the patient's display name and age at the exam,
//! and the origin institution's configured name.
rdg::v1::Exam ToProto(const storage::ExamRecord& record,
                      const config::InstitutionDirectory& institutions);

rdg::v1::StoredObject ToProto(const storage::ObjectRecord& record);
rdg::v1::ExamEvent ToProto(const storage::ExamEventRecord& record);
rdg::v1::LabResult ToProto(const storage::LabResultRecord& record);
rdg::v1::ReportVersion ToProto(const storage::ReportRecord& record);
//! A report as its clinic receives it; `exam` (when found) and the names are for printing.
rdg::v1::DeliveredReport ToDelivered(const storage::ReportRecord& record,
                                     const storage::ExamRecord* exam,
                                     const config::InstitutionDirectory& institutions,
                                     const std::string& platform_name);

}  // namespace rdg::api
