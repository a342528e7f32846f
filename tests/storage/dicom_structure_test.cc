#include "storage/formats/dicom_structure.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "storage/formats/dicom_parser.h"
#include "tests/mocks/dicom_builder.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::formats {
namespace {

using testing::Element;
using ::testing::HasSubstr;
using testing::MinimalDataset;
using testing::NestedSequences;
using testing::Part10;

const DicomStructureLimits kLimits{/*max_sequence_depth=*/64, /*max_elements=*/500000};

absl::Status Check(const std::string& bytes, const DicomStructureLimits& limits = kLimits) {
  return CheckDicomStructureBuffer(bytes, limits).status();
}

TEST(DicomStructureTest, AcceptsMinimalObjectAndCountsElements) {
  auto facts = CheckDicomStructureBuffer(Part10(MinimalDataset()), kLimits);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->elements, 5 + 7);  // meta group of five, dataset of seven
}

TEST(DicomStructureTest, AcceptsReasonableNesting) {
  auto facts =
      CheckDicomStructureBuffer(Part10(MinimalDataset() + NestedSequences(20, true)), kLimits);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->deepest_sequence, 20);
}

// What was seen: ~400 KB of sequences that never close crashed the gateway inside DCMTK.
TEST(DicomStructureTest, DeeplyNestedUnclosedSequencesAreRefused) {
  absl::Status s = Check(Part10(MinimalDataset() + NestedSequences(20000, false)));
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("nests sequences more than 64 levels"));
}

// What was seen: 12,000 closed sequence levels (~240 KB), well-formed, crashed it too.
TEST(DicomStructureTest, DeeplyNestedClosedSequencesAreRefused) {
  EXPECT_THAT(Check(Part10(MinimalDataset() + NestedSequences(12000, true))).message(),
              HasSubstr("nests sequences"));
}

TEST(DicomStructureTest, UnclosedSequenceWithinLimitsIsTruncation) {
  EXPECT_THAT(Check(Part10(MinimalDataset() + NestedSequences(3, false))).message(),
              HasSubstr("unclosed sequence"));
}

TEST(DicomStructureTest, FourGigabyteDeclaredLengthIsRefused) {
  const std::string lie = Element(0x7FE0, 0x0010, "OB", std::string(64, 'x'), 0xFFFFFFF0);
  absl::Status s = Check(Part10(MinimalDataset() + lie));
  EXPECT_THAT(s.message(), HasSubstr("(7FE0,0010) declares 4294967280 bytes but only 64 remain"));
}

TEST(DicomStructureTest, ItemLengthBeyondItsSequenceIsRefused) {
  const std::string item = testing::ItemStart(1000) + Element(0x0008, 0x0100, "SH", "X");
  const std::string seq = Element(0x0040, 0xA730, "SQ", item, static_cast<int64_t>(item.size()));
  EXPECT_THAT(Check(Part10(MinimalDataset() + seq)).message(), HasSubstr("declares 1000 bytes"));
}

TEST(DicomStructureTest, ItemOutsideSequenceAndStrayDelimitersAreRefused) {
  EXPECT_THAT(Check(Part10(MinimalDataset() + testing::ItemStart(0))).message(),
              HasSubstr("outside any sequence"));
  EXPECT_THAT(Check(Part10(MinimalDataset() + testing::ItemEnd())).message(),
              HasSubstr("item delimiter"));
  EXPECT_THAT(Check(Part10(MinimalDataset() + testing::SequenceEnd())).message(),
              HasSubstr("sequence delimiter"));
}

TEST(DicomStructureTest, UndefinedLengthItemsInsideUndefinedLengthItemsAreFine) {
  std::string nested = testing::SequenceStart() + testing::ItemStart() + testing::SequenceStart() +
                       testing::ItemStart() + Element(0x0008, 0x0100, "SH", "CODE") +
                       testing::ItemEnd() + testing::SequenceEnd() + testing::ItemEnd() +
                       testing::SequenceEnd();
  EXPECT_TRUE(Check(Part10(MinimalDataset() + nested)).ok());
}

TEST(DicomStructureTest, HugeElementCountIsRefused) {
  absl::Status s = Check(Part10(MinimalDataset() + testing::ManyElements(1000)), {64, 500});
  EXPECT_THAT(s.message(), HasSubstr("more than 500 data elements"));
}

TEST(DicomStructureTest, EncapsulatedPixelDataIsWalkedByFragments) {
  const std::string fragments =
      testing::ItemStart(0) + testing::ItemStart(4) + "abcd" + testing::SequenceEnd();
  const std::string pixels = Element(0x7FE0, 0x0010, "OB", "", testing::kUndefined) + fragments;
  EXPECT_TRUE(Check(Part10(MinimalDataset() + pixels, "1.2.840.10008.1.2.4.50")).ok());
  const std::string lying =
      Element(0x7FE0, 0x0010, "OB", "", testing::kUndefined) + testing::ItemStart(4000) + "abcd";
  EXPECT_THAT(Check(Part10(MinimalDataset() + lying, "1.2.840.10008.1.2.4.50")).message(),
              HasSubstr("fragment"));
}

// Truncation at every byte of a real CT: cuts inside an element are refused; cuts between
// top-level elements leave a shorter but well-formed object (DCMTK and the UID checks judge it).
TEST(DicomStructureTest, TruncationAtEveryByteOfARealObject) {
  const std::string ct = testing::ReadFileBytes(std::string(RDG_PYDICOM_FILES) + "/CT_small.dcm");
  ASSERT_TRUE(Check(ct).ok());
  int refused = 0, accepted = 0;
  for (size_t cut = 132; cut < ct.size(); ++cut) {
    (Check(ct.substr(0, cut)).ok() ? accepted : refused)++;
  }
  EXPECT_GT(refused, static_cast<int>(ct.size()) * 9 / 10);
  EXPECT_GT(accepted, 10);  // the element boundaries
}

TEST(DicomStructureTest, NonDicomFilesAreNamed) {
  EXPECT_THAT(Check("hello, this is a lab report in plain text\n").message(),
              HasSubstr("this is text, not a DICOM file"));
  EXPECT_THAT(
      Check(std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00", 14) + std::string(100, 'x'))
          .message(),
      HasSubstr("this is a JPEG image, not a DICOM file: export the study"));
  EXPECT_THAT(Check("%PDF-1.4\n" + std::string(100, 'x')).message(), HasSubstr("a PDF document"));
  // Binary garbage that is none of the known kinds: the walk says what is broken.
  EXPECT_THAT(Check(std::string(4096, '\xff')).message(), HasSubstr("structure is broken"));
}

// No false refusals: every sample file that DCMTK reads passes the structural check.
TEST(DicomStructureTest, EveryFileDcmtkReadsPasses) {
  ASSERT_TRUE(InitDicomToolkit().ok());
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(RDG_PYDICOM_FILES)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    if (!ParseDicomFile(path).ok()) continue;
    auto facts = CheckDicomStructure(path, kLimits);
    EXPECT_TRUE(facts.ok()) << path << ": " << facts.status();
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

}  // namespace
}  // namespace rdg::formats
