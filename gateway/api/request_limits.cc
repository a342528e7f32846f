#include "gateway/api/request_limits.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace rdg::api {
namespace {

using google::protobuf::FieldDescriptor;

size_t LimitOf(const FieldDescriptor& field) {
  const std::string& name = field.name();
  if (field.type() == FieldDescriptor::TYPE_BYTES) {
    if (name == "data") return SIZE_MAX;  // upload chunks: limits.max_chunk_bytes
    if (name == "canonical_bytes") return kMaxCanonicalReportBytes;
    return kMaxSignatureBytes;
  }
  if (name == "findings" || name == "impression") return kMaxReportTextBytes;
  if (name == "reason") return kMaxReasonBytes;
  return kMaxIdBytes;
}

absl::Status TooLong(const std::string& path, size_t size, size_t limit) {
  return absl::InvalidArgumentError(absl::StrCat("request field ", path, " is ", size,
                                                 " bytes long; at most ", limit, " are accepted"));
}

absl::Status Check(const google::protobuf::Message& message, const std::string& prefix) {
  const auto* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string path =
        prefix.empty() ? field->name() : absl::StrCat(prefix, ".", field->name());
    const bool text = field->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
    const bool nested = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(message, field);
      if (n > kMaxRepeated) {
        return absl::InvalidArgumentError(
            absl::StrCat("request field ", path, " has ", n, " entries; at most ", kMaxRepeated));
      }
      for (int i = 0; i < n; ++i) {
        if (text) {
          std::string scratch;
          const std::string& v =
              reflection->GetRepeatedStringReference(message, field, i, &scratch);
          if (v.size() > LimitOf(*field)) return TooLong(path, v.size(), LimitOf(*field));
        } else if (nested) {
          if (auto s = Check(reflection->GetRepeatedMessage(message, field, i), path); !s.ok()) {
            return s;
          }
        }
      }
      continue;
    }
    if (text) {
      std::string scratch;
      const std::string& v = reflection->GetStringReference(message, field, &scratch);
      if (v.size() > LimitOf(*field)) return TooLong(path, v.size(), LimitOf(*field));
    } else if (nested) {
      if (auto s = Check(reflection->GetMessage(message, field), path); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRequestLimits(const google::protobuf::Message& request) {
  return Check(request, "");
}

}  // namespace rdg::api
