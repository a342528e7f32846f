// The index's vocabulary against the API's enumerations: every API value has its counterpart,
// the same number and the same name (names are written into events, audit details and messages).
#include "storage/vocabulary.h"

#include <gtest/gtest.h>

#include "google/protobuf/descriptor.h"
#include "storage/vocabulary_proto.h"

namespace rdg::storage {
namespace {

// Every value the API declares converts to the index's value of the same number and name, and
// back to itself.
template <typename Api, typename Index>
void ExpectSameVocabulary(const google::protobuf::EnumDescriptor* descriptor) {
  ASSERT_GT(descriptor->value_count(), 1) << descriptor->full_name();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    const auto* value = descriptor->value(i);
    const auto api = static_cast<Api>(value->number());
    const Index index = FromProto(api);
    EXPECT_EQ(Number(index), value->number()) << value->full_name();
    EXPECT_EQ(Name(index), value->name()) << value->full_name();
    EXPECT_EQ(ToProto(index), api) << value->full_name();
  }
}

TEST(VocabularyTest, EveryApiValueHasItsCounterpart) {
  ExpectSameVocabulary<rdg::v1::ExamState, ExamState>(rdg::v1::ExamState_descriptor());
  ExpectSameVocabulary<rdg::v1::Priority, Priority>(rdg::v1::Priority_descriptor());
  ExpectSameVocabulary<rdg::v1::Role, Role>(rdg::v1::Role_descriptor());
  ExpectSameVocabulary<rdg::v1::ObjectKind, ObjectKind>(rdg::v1::ObjectKind_descriptor());
  ExpectSameVocabulary<rdg::v1::Stage, Stage>(rdg::v1::Stage_descriptor());
  ExpectSameVocabulary<rdg::v1::IdentityConflictKind, IdentityConflictKind>(
      rdg::v1::IdentityConflictKind_descriptor());
  ExpectSameVocabulary<rdg::v1::ReportStatus, ReportStatus>(rdg::v1::ReportStatus_descriptor());
  ExpectSameVocabulary<rdg::v1::SignatureFormat, SignatureFormat>(
      rdg::v1::SignatureFormat_descriptor());
}

TEST(VocabularyTest, AValueOutsideTheListKeepsItsNumber) {
  // A newer client's value: stored and shown as its number, as protobuf keeps unknown values.
  const auto newer = FromProto(static_cast<rdg::v1::Priority>(42));
  EXPECT_EQ(Number(newer), 42);
  EXPECT_EQ(Name(newer), "42");
  EXPECT_EQ(Name(FromNumber<ExamState>(-1)), "-1");
}

}  // namespace
}  // namespace rdg::storage
