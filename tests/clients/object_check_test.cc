// The edge agent's check of received objects (clients/agent/object_check.h) with the gateway's
// parser run in-process: what the gateway would refuse is refused, with the class of refusal
// that decides the device's status.
#include "clients/agent/object_check.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "storage/parsing/isolated_parser.h"

#include "tests/mocks/temp_dir.h"

namespace rdg::agent {
namespace {

std::unique_ptr<ObjectCheck> InProcessCheck(int64_t max_bytes) {
  return std::make_unique<ObjectCheck>(
      std::make_unique<parsing::InProcessParser>(parsing::CriticalValueTable(),
                                                 formats::DicomStructureLimits{}),
      max_bytes);
}

std::string Write(const testing::TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.Join(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ObjectCheckTest, AcceptsWhatTheGatewayAccepts) {
  testing::TempDir dir;
  auto check = InProcessCheck(int64_t{2} << 30);
  auto parsed = check->Check(rdg::v1::DICOM, RDG_PYDICOM_FILES "/CT_small.dcm", absl::Now(), "");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->object.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
}

TEST(ObjectCheckTest, RefusesBadContentForGood) {
  testing::TempDir dir;
  auto check = InProcessCheck(int64_t{2} << 30);
  const std::string ct = ReadFile(RDG_PYDICOM_FILES "/CT_small.dcm");
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"truncated.dcm", ct.substr(0, 900)},
           {"jpeg.dcm", std::string("\xff\xd8\xff\xe0\x00\x10JFIF", 10) + std::string(500, '\0')},
           {"empty.dcm", ""}}) {
    auto parsed = check->Check(rdg::v1::DICOM, Write(dir, name, bytes), absl::Now(), "");
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << name << ": " << parsed.status();
    EXPECT_GT(parsed.status().message().size(), 10u) << name;
  }
}

TEST(ObjectCheckTest, ObjectsOverTheGatewayLimitAreOutOfResources) {
  auto check = InProcessCheck(1000);
  auto parsed = check->Check(rdg::v1::DICOM, RDG_PYDICOM_FILES "/CT_small.dcm", absl::Now(), "");
  EXPECT_TRUE(absl::IsResourceExhausted(parsed.status())) << parsed.status();
  EXPECT_NE(parsed.status().message().find("at most 1000"), std::string::npos);
}

TEST(ObjectCheckTest, RefusedLabMessagesCarryTheGatewaysAck) {
  testing::TempDir dir;
  auto check = InProcessCheck(int64_t{2} << 30);
  const std::string msg =
      "MSH|^~\\&|LIS|LAB|RDG|GW|20261129120000||ORU^R01|C-1|P|2.5.1\r"
      "PID|1||H1^^^LAB||TEST^PATIENT||19700101|M\r";  // no OBR/OBX: nothing to store
  auto parsed = check->Check(rdg::v1::HL7V2_LAB, Write(dir, "m.hl7", msg), absl::Now(), "A1");
  ASSERT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
  auto ack = parsing::AckOf(parsed.status());
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->message().find("MSA|A"), std::string::npos) << ack->message();
  EXPECT_NE(ack->message().find("|C-1"), std::string::npos) << ack->message();
}

// A stand-in for a parser that gets no CPU on a loaded clinic computer: the real rdg-parser
// processes, handed a FIFO without a writer whatever the job names (they wait without using CPU).
class StuckParser final : public parsing::ObjectParser {
 public:
  StuckParser(std::unique_ptr<parsing::IsolatedParser> pool, std::string fifo)
      : pool_(std::move(pool)), fifo_(std::move(fifo)) {}
  absl::StatusOr<parsing::ParsedObject> Parse(const parsing::ParseJob& job) const override {
    parsing::ParseJob stuck = job;
    stuck.path = fifo_;
    return pool_->Parse(stuck);
  }

 private:
  std::unique_ptr<parsing::IsolatedParser> pool_;
  std::string fifo_;
};

// What the review found: a parse that ran out of wall-clock time on a busy agent was answered
// C000 (never send again) for an object the gateway accepts.
TEST(ObjectCheckTest, NoAnswerInTimeWithoutUsingTheCpuMeansTryAgain) {
  testing::TempDir dir;
  const std::string fifo = dir.Join("stuck");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  rdg::v1::ParserConfig config;
  config.set_program(RDG_BIN_DIR "/rdg-parser");
  config.set_processes(1);
  config.set_timeout_seconds(1);
  auto pool = parsing::StartParserPool(config);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ObjectCheck check(std::make_unique<StuckParser>(*std::move(pool), fifo), int64_t{2} << 30);
  auto parsed = check.Check(rdg::v1::DICOM, RDG_PYDICOM_FILES "/CT_small.dcm", absl::Now(), "");
  EXPECT_TRUE(absl::IsUnavailable(parsed.status())) << parsed.status();
  EXPECT_NE(parsed.status().message().find("send it again"), std::string::npos);
}

}  // namespace
}  // namespace rdg::agent
