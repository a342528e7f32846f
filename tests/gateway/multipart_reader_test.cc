// MultipartReader (gateway/dicomweb/multipart_reader.h): a multipart/related body split into
// parts however it arrives — whole, a byte at a time, with CRLFs and near-delimiters inside the
// parts — and malformed bodies refused.
#include "gateway/dicomweb/multipart_reader.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace rdg::dicomweb {
namespace {

struct Collected {
  std::vector<std::map<std::string, std::string>> headers;
  std::vector<std::string> parts;
};

MultipartReader Reader(Collected& c, const std::string& boundary = "b0und") {
  return MultipartReader(boundary, {[&c](const std::map<std::string, std::string>& h) {
                                      c.headers.push_back(h);
                                      c.parts.emplace_back();
                                      return true;
                                    },
                                    [&c](absl::string_view d) {
                                      c.parts.back().append(d.data(), d.size());
                                      return true;
                                    },
                                    [] { return true; }});
}

constexpr char kBodyText[] =
    "preamble to ignore\r\n"
    "--b0und\r\n"
    "Content-Type: application/dicom\r\n"
    "X-Other:  spaced  \r\n"
    "\r\n"
    "DICM\r\n--b0un not a delimiter\r\n\x00\x01 binary\r\n"
    "\r\n--b0und  \r\n"
    "content-type: application/dicom\r\n"
    "\r\n"
    "second"
    "\r\n--b0und--\r\n"
    "epilogue";
const std::string kBody(kBodyText, sizeof(kBodyText) - 1);  // it holds a NUL

TEST(MultipartReaderTest, PartsComeOutTheSameWholeOrAByteAtATime) {
  const std::string body(kBody.data(), kBody.size());
  for (size_t step : {body.size(), size_t{1}, size_t{2}, size_t{7}}) {
    Collected c;
    MultipartReader reader = Reader(c);
    for (size_t i = 0; i < body.size(); i += step) {
      ASSERT_TRUE(reader.Feed(absl::string_view(body).substr(i, step))) << reader.error();
    }
    EXPECT_TRUE(reader.finished()) << "step " << step;
    ASSERT_EQ(c.parts.size(), 2u) << "step " << step;
    constexpr char kFirst[] = "DICM\r\n--b0un not a delimiter\r\n\x00\x01 binary\r\n";
    EXPECT_EQ(c.parts[0], std::string(kFirst, sizeof(kFirst) - 1));
    EXPECT_EQ(c.parts[1], "second");
    EXPECT_EQ(c.headers[0].at("content-type"), "application/dicom");
    EXPECT_EQ(c.headers[0].at("x-other"), "spaced");
    EXPECT_EQ(c.headers[1].at("content-type"), "application/dicom");
  }
}

TEST(MultipartReaderTest, ABodyMayStartWithItsFirstDelimiter) {
  Collected c;
  MultipartReader reader = Reader(c);
  EXPECT_TRUE(reader.Feed("--b0und\r\n\r\nonly\r\n--b0und--"));
  EXPECT_TRUE(reader.finished());
  ASSERT_EQ(c.parts.size(), 1u);
  EXPECT_EQ(c.parts[0], "only");
  EXPECT_TRUE(c.headers[0].empty());
}

TEST(MultipartReaderTest, MalformedBodiesAreRefused) {
  {
    Collected c;
    MultipartReader reader = Reader(c);
    EXPECT_TRUE(reader.Feed("--b0und\r\nContent-Type: application/dicom\r\n\r\ncut short"));
    EXPECT_FALSE(reader.finished()) << "no closing delimiter yet";
  }
  {
    Collected c;
    MultipartReader reader = Reader(c);
    EXPECT_FALSE(reader.Feed("--b0und\r\nno colon here\r\n\r\nx\r\n--b0und--"));
    EXPECT_NE(reader.error(), "");
  }
  {
    Collected c;
    MultipartReader reader = Reader(c);
    EXPECT_FALSE(reader.Feed("--b0undjunk\r\n\r\nx\r\n--b0und--"));
  }
  {
    Collected c;
    MultipartReader reader = Reader(c);
    EXPECT_TRUE(reader.Feed(std::string(20000, 'x')));  // a preamble, so far
    EXPECT_FALSE(reader.finished()) << "a body without any boundary never ends";
  }
  {
    Collected c;
    MultipartReader reader =
        MultipartReader("b0und", {[](const auto&) { return true; },
                                  [](absl::string_view) { return false; }, [] { return true; }});
    EXPECT_FALSE(reader.Feed("--b0und\r\n\r\nrefused by its reader\r\n--b0und--"));
  }
}

TEST(MultipartReaderTest, ContentTypeParameters) {
  const std::string type = "Multipart/Related; type=\"application/dicom\"; boundary=\"a b;c\"";
  EXPECT_EQ(MediaTypeOf(type), "multipart/related");
  EXPECT_EQ(ParameterOf(type, "type"), "application/dicom");
  EXPECT_EQ(BoundaryOf("multipart/related; boundary=xyz"), "xyz");
  EXPECT_EQ(BoundaryOf("multipart/related"), "");
}

}  // namespace
}  // namespace rdg::dicomweb
