// What a DICOMweb client's Accept header allows: JSON answers, multipart answers and their
// transfer syntaxes, as viewers (OHIF, Weasis), Orthanc's plugin and curl send it.
#include "gateway/dicomweb/accept.h"

#include "gtest/gtest.h"

namespace rdg::dicomweb {
namespace {

constexpr char kJpegLossless[] = "1.2.840.10008.1.2.4.70";
constexpr char kExplicitLe[] = "1.2.840.10008.1.2.1";

TEST(AcceptTest, ParsesRangesParametersAndQuality) {
  auto ranges = ParseAccept(
      R"(multipart/related; type="application/dicom"; transfer-syntax=*, application/json;q=0.5, text/html;q=0)");
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].type, "multipart/related");
  EXPECT_EQ(ranges[0].params.at("type"), "application/dicom");
  EXPECT_EQ(ranges[0].params.at("transfer-syntax"), "*");
  EXPECT_EQ(ranges[1].type, "application/json");
  EXPECT_DOUBLE_EQ(ranges[1].q, 0.5);
}

TEST(AcceptTest, JsonAnswers) {
  EXPECT_TRUE(AcceptsType("", "application/dicom+json"));
  EXPECT_TRUE(AcceptsType("*/*", "application/dicom+json"));
  EXPECT_TRUE(AcceptsType("application/*", "application/dicom+json"));
  EXPECT_TRUE(AcceptsType("text/html, application/dicom+json", "application/dicom+json"));
  EXPECT_FALSE(AcceptsType("application/dicom+xml", "application/dicom+json"));
  // Not a substring match: "application/json" is not found in "application/jsonx".
  EXPECT_FALSE(AcceptsType("application/jsonx", "application/json"));
  EXPECT_FALSE(AcceptsType("application/dicom+json;q=0", "application/dicom+json"));
}

TEST(AcceptTest, MultipartAnswersAndTheirTransferSyntax) {
  // OHIF's frames request; Orthanc's and curl's instance requests.
  EXPECT_TRUE(
      AcceptsMultipart(R"(multipart/related; type="application/octet-stream"; transfer-syntax=*)",
                       "application/octet-stream", kJpegLossless));
  EXPECT_TRUE(AcceptsMultipart(R"(multipart/related; type="application/dicom")",
                               "application/dicom", kJpegLossless));
  EXPECT_TRUE(AcceptsMultipart("multipart/related", "application/dicom", kJpegLossless));
  EXPECT_TRUE(AcceptsMultipart("application/dicom", "application/dicom", kJpegLossless));
  EXPECT_TRUE(AcceptsMultipart("", "application/dicom", kJpegLossless));
  // Asking for Explicit VR Little Endian: served when stored so, refused (no transcoding)
  // when stored compressed.
  const char* explicit_le =
      R"(multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1)";
  EXPECT_TRUE(AcceptsMultipart(explicit_le, "application/dicom", kExplicitLe));
  EXPECT_FALSE(AcceptsMultipart(explicit_le, "application/dicom", kJpegLossless));
  // Another part type.
  EXPECT_FALSE(AcceptsMultipart(R"(multipart/related; type="image/jpeg")", "application/dicom",
                                kJpegLossless));
  EXPECT_TRUE(
      AcceptsMultipart(R"(multipart/related; type="image/jpeg")", "image/jpeg", kJpegLossless));
  EXPECT_FALSE(AcceptsMultipart("application/dicom+json", "application/dicom", kExplicitLe));
}

}  // namespace
}  // namespace rdg::dicomweb
