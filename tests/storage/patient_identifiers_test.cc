#include "storage/formats/patient_identifiers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rdg::formats {
namespace {

using ::testing::HasSubstr;

// Born 1970-01-01, sequence 123 (odd: a man), check digit 8 (ISO 7064 MOD 11-2).
constexpr char kValid[] = "110101197001011238";

TEST(ResidentIdTest, AcceptsAValidNumberThatAgreesWithTheObject) {
  EXPECT_EQ(ResidentIdProblem(kValid, "", ""), "");
  EXPECT_EQ(ResidentIdProblem(kValid, "19700101", "M"), "");
  EXPECT_EQ(ResidentIdProblem("11010119900307002X", "", "F"), "") << "X as the check character";
  EXPECT_EQ(ResidentIdProblem("11010119900307002x", "", ""), "");
}

TEST(ResidentIdTest, NamesTheRuleEachBadNumberBreaks) {
  EXPECT_THAT(ResidentIdProblem("000000000000000000", "", ""), HasSubstr("placeholder"));
  EXPECT_THAT(ResidentIdProblem("111111111111111110", "", ""), HasSubstr("placeholder"));
  EXPECT_THAT(ResidentIdProblem("110101197001011239", "", ""), HasSubstr("check digit"));
  EXPECT_THAT(ResidentIdProblem("11010119700101123", "", ""), HasSubstr("17 digits"));
  EXPECT_THAT(ResidentIdProblem("1101011970010112388", "", ""), HasSubstr("17 digits"));
  EXPECT_THAT(ResidentIdProblem("11010119700101123A", "", ""), HasSubstr("17 digits"));
  EXPECT_THAT(ResidentIdProblem("990101197001011234", "", ""), HasSubstr("check digit"));
  EXPECT_THAT(ResidentIdProblem("990101197001011231", "", ""), HasSubstr("province"));
  EXPECT_THAT(ResidentIdProblem("110101197002301237", "", ""), HasSubstr("not a date"));
  EXPECT_THAT(ResidentIdProblem(kValid, "20010101", ""), HasSubstr("birth date"));
  EXPECT_THAT(ResidentIdProblem("11010519491231002X", "", ""), HasSubstr("specimen"));
  EXPECT_THAT(ResidentIdProblem("110101209901011239", "", ""), HasSubstr("future"));
  EXPECT_THAT(ResidentIdProblem(kValid, "", "F"), HasSubstr("sex"));
  // The reason never quotes the number.
  EXPECT_THAT(ResidentIdProblem(kValid, "20010101", ""), ::testing::Not(HasSubstr("1101")));
}

TEST(ResidentIdTest, ChoosesTheFirstUsableTypedOrWellShapedIdentifier) {
  const std::vector<PatientIdentifier> ids = {
      {"MR-0042", "CLINIC", "MR", "PID-3"},           // a local number: not a candidate
      {"000000000000000000", "", "", "(0010,1000)"},  // placeholder
      {kValid, "公安部", "NNCHN", "PID-3"}};
  const NationalIdChoice choice = ChooseNationalId(ids, "19700101", "M");
  EXPECT_EQ(choice.id, kValid);
  EXPECT_EQ(choice.issuer, "公安部^NNCHN");
  EXPECT_EQ(choice.problem, "");
  const NationalIdChoice none = ChooseNationalId({ids[0], ids[1]}, "19700101", "M");
  EXPECT_EQ(none.id, "");
  EXPECT_EQ(none.problem,
            "the national ID in (0010,1000): it is a placeholder (one digit repeated)");
  const NationalIdChoice typed = ChooseNationalId({{"12345", "", "NNCHN", "PID-3"}}, "", "");
  EXPECT_EQ(typed.id, "");
  EXPECT_THAT(typed.problem, HasSubstr("PID-3 (NNCHN)"));
  const NationalIdChoice untyped = ChooseNationalId({{kValid, "", "", "(0010,1000)"}}, "", "");
  EXPECT_EQ(untyped.issuer, "(0010,1000)");
}

}  // namespace
}  // namespace rdg::formats
