// QIDO-RS queries: keys by keyword or tag at their level, lists of UIDs, paging bounds, and the
// keys RDG does not match on named back in a Warning (safe to put in a header).
#include "gateway/dicomweb/qido.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdg::dicomweb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(QidoTest, KeysByKeywordOrTagAtTheirLevel) {
  auto q = ParseQido({{"00100020", "HB-1"},
                      {"PatientName", "张*"},
                      {"SeriesInstanceUID", "1.2,1.3\\1.4"},
                      {"Modality", "CT"},
                      {"includefield", "all"},
                      {"fuzzymatching", "false"}},
                     QidoLevel::kSeries);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->patient_id, "HB-1");
  EXPECT_EQ(q->patient_name, "张*");
  EXPECT_THAT(q->series_uids, ElementsAre("1.2", "1.3", "1.4"));
  EXPECT_EQ(q->modality, "CT");
  EXPECT_TRUE(q->ignored.empty());
  EXPECT_EQ(IgnoredKeysWarning(*q), "");
}

TEST(QidoTest, KeysOfALowerLevelAndUnknownOnesAreIgnoredAndSaidSo) {
  auto q = ParseQido({{"Modality", "CT"},
                      {"StudyDescription", "x"},
                      {"fuzzymatching", "true"},
                      {"bad\r\n\"k", "1"}},
                     QidoLevel::kStudy);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->modality, "");  // a series key in a study search
  const std::string warning = IgnoredKeysWarning(*q);
  EXPECT_THAT(warning, HasSubstr("299 rdg"));
  EXPECT_THAT(warning, HasSubstr("Modality"));
  EXPECT_THAT(warning, HasSubstr("StudyDescription"));
  EXPECT_THAT(warning, HasSubstr("fuzzymatching"));
  EXPECT_THAT(warning, Not(HasSubstr("\r")));
  EXPECT_THAT(warning, HasSubstr("bad???k"));
}

TEST(QidoTest, PagingIsBoundedAndMustBeNumbers) {
  auto q = ParseQido({{"limit", "100000"}, {"offset", "-4"}}, QidoLevel::kStudy);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 1000);
  EXPECT_EQ(q->offset, 0);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseQido({{"limit", "ten"}}, QidoLevel::kStudy).status()));
}

TEST(QidoTest, StudiesSeriesAndInstancesMatch) {
  storage::ExamRecord exam;
  exam.study_instance_uid = "1.2.3";
  exam.study_date = "20261129";
  exam.patient.patient_id = "HB-0042";
  exam.patient.name = "Zhang^San=张^三";
  storage::ObjectRecord ct;
  ct.kind = storage::ObjectKind::kDicom;
  ct.series_instance_uid = "1.2.3.1";
  ct.sop_instance_uid = "1.2.3.1.1";
  ct.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  ct.modality = "CT";
  const std::vector<storage::ObjectRecord> objects = {ct};
  const std::vector<SeriesSummary> series = SeriesOf(objects);

  auto match = [&](std::multimap<std::string, std::string> params) {
    auto q = ParseQido(params, QidoLevel::kInstance);
    return q.ok() && MatchesStudy(*q, exam, series) && MatchesSeries(*q, series[0]) &&
           MatchesInstance(*q, objects[0]);
  };
  EXPECT_TRUE(match({}));
  EXPECT_TRUE(match({{"PatientName", "张*"}}));
  EXPECT_TRUE(match({{"PatientName", "zhang san"}}));
  EXPECT_TRUE(match({{"StudyDate", "20261101-"}}));
  EXPECT_FALSE(match({{"StudyDate", "-20261128"}}));
  EXPECT_TRUE(match({{"ModalitiesInStudy", "MR,CT"}}));
  EXPECT_FALSE(match({{"Modality", "MR"}}));
  EXPECT_TRUE(match({{"SOPInstanceUID", "9.9,1.2.3.1.1"}}));
  EXPECT_FALSE(match({{"SOPClassUID", "1.2.840.10008.5.1.4.1.1.4"}}));
  EXPECT_FALSE(match({{"StudyInstanceUID", "1.2.33"}}));
}

}  // namespace
}  // namespace rdg::dicomweb
