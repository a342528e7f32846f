#include "storage/parsing/isolated_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/mocks/dicom_builder.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::parsing {
namespace {

using ::testing::HasSubstr;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

//! The real rdg-parser processes, with limits a test can reach quickly.
class IsolatedParserTest : public ::testing::Test {
 protected:
  std::unique_ptr<IsolatedParser> Start(int64_t max_depth = 64, int64_t memory = 1 << 30,
                                        absl::Duration timeout = absl::Seconds(30)) {
    IsolatedParser::Options o;
    o.program = std::string(RDG_BIN_DIR) + "/rdg-parser";
    o.processes = 2;
    o.timeout = timeout;
    o.setup.mutable_limits()->set_max_sequence_depth(static_cast<int32_t>(max_depth));
    o.setup.mutable_limits()->set_max_elements(10'000'000);
    o.setup.mutable_limits()->set_memory_bytes(memory);
    o.setup.mutable_limits()->set_timeout_seconds(
        static_cast<int32_t>(absl::ToInt64Seconds(timeout)));
    auto parser = IsolatedParser::Start(std::move(o));
    EXPECT_TRUE(parser.ok()) << parser.status();
    return parser.ok() ? *std::move(parser) : nullptr;
  }
  absl::StatusOr<parsing::ParsedObject> ParseFile(const IsolatedParser& parser,
                                                  const std::string& path) {
    return parser.Parse({rdg::v1::DICOM, path, 0, absl::Now(), "RDG1"});
  }
  absl::StatusOr<parsing::ParsedObject> ParseBytes(const IsolatedParser& parser,
                                                   const std::string& bytes) {
    return ParseFile(parser, dir_.Write("object.dcm", bytes));
  }
  //! A well-formed object still parses (the pool recovered).
  void ExpectHealthy(const IsolatedParser& parser) {
    auto ok = ParseFile(parser, std::string(RDG_PYDICOM_FILES) + "/CT_small.dcm");
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(ok->object.sop_instance_uid, "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322");
    EXPECT_EQ(ok->exam.patient.name, "CompressedSamples^CT1");
  }
  testing::TempDir dir_;
};

TEST_F(IsolatedParserTest, ParsesLikeTheInProcessParser) {
  auto parser = Start();
  ASSERT_NE(parser, nullptr);
  ExpectHealthy(*parser);
  auto ecg = ParseFile(*parser, std::string(RDG_PYDICOM_FILES) + "/waveform_ecg.dcm");
  ASSERT_TRUE(ecg.ok()) << ecg.status();
  EXPECT_EQ(ecg->exam.exam_type, "ECG");
}

TEST_F(IsolatedParserTest, RefusalsKeepTheirReason) {
  auto parser = Start();
  ASSERT_NE(parser, nullptr);
  auto s = ParseBytes(
      *parser, testing::Part10(testing::MinimalDataset() + testing::NestedSequences(20000, false)));
  EXPECT_TRUE(absl::IsInvalidArgument(s.status()));
  EXPECT_THAT(s.status().message(), HasSubstr("nests sequences more than 64"));
  EXPECT_EQ(parser->counters().crashed.load(), 0);
}

// With the structural limit lifted, DCMTK's recursion overflows the parser's stack: the process
// dies, that one object is refused with the reason, and the next object parses.
TEST_F(IsolatedParserTest, AParserThatCrashesCostsOnlyItsObject) {
  auto parser = Start(/*max_depth=*/1'000'000);
  ASSERT_NE(parser, nullptr);
  auto s = ParseBytes(
      *parser, testing::Part10(testing::MinimalDataset() + testing::NestedSequences(100000, true)));
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("could not be parsed safely: the parser crashed"));
  EXPECT_EQ(parser->counters().crashed.load(), 1);
  ExpectHealthy(*parser);
  ExpectHealthy(*parser);
}

TEST_F(IsolatedParserTest, AParserThatHangsIsTimedOut) {
  auto parser = Start(64, 1 << 30, absl::Seconds(1));
  ASSERT_NE(parser, nullptr);
  // Opening a FIFO without a writer blocks forever: the stand-in for a parser stuck in a loop.
  const std::string fifo = dir_.Join("stuck.dcm");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto s = ParseFile(*parser, fifo);
  EXPECT_THAT(s.status().message(), HasSubstr("took longer than 1 s"));
  EXPECT_TRUE(OnlyOutOfWallClockTime(s.status()));  // it used no CPU: maybe a busy machine
  EXPECT_EQ(parser->counters().timed_out.load(), 1);
  ExpectHealthy(*parser);
}

TEST_F(IsolatedParserTest, AParserThatNeedsTooMuchMemoryIsStopped) {
  if (kAddressSanitizer) GTEST_SKIP() << "no address-space limit under AddressSanitizer";
  auto parser = Start(64, 96 << 20);
  ASSERT_NE(parser, nullptr);
  // Two million elements: DCMTK needs several hundred bytes for each.
  auto s = ParseBytes(
      *parser, testing::Part10(testing::MinimalDataset() + testing::ManyElements(2'000'000)));
  EXPECT_THAT(s.status().message(), HasSubstr("needed more memory than allowed"));
  EXPECT_EQ(parser->counters().out_of_memory.load(), 1);
  ExpectHealthy(*parser);
}

//! Kills (SIGKILL) every rdg-parser process this test process started; returns how many.
int KillOurParsers() {
  int killed = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos || line.find("(rdg-parser)") == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == ::getpid() && ::kill(std::stoi(name), SIGKILL) == 0) ++killed;
  }
  return killed;
}

// A parser killed from outside (an operator, the OOM killer) is not the next object's fault: the
// object goes to a fresh process.
TEST_F(IsolatedParserTest, AProcessKilledWhileIdleIsReplaced) {
  auto parser = Start();
  ASSERT_NE(parser, nullptr);
  ASSERT_GT(KillOurParsers(), 0);
  ExpectHealthy(*parser);
  EXPECT_EQ(parser->counters().crashed.load(), 0);
}

TEST_F(IsolatedParserTest, AMissingProgramIsAStartError) {
  IsolatedParser::Options o;
  o.program = dir_.Join("no-such-parser");
  auto parser = IsolatedParser::Start(std::move(o));
  EXPECT_THAT(parser.status().message(), HasSubstr("cannot start the parser program"));
}

TEST_F(IsolatedParserTest, ConcurrentParsesShareThePool) {
  auto parser = Start();
  ASSERT_NE(parser, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> parsed{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = ParseFile(*parser, std::string(RDG_PYDICOM_FILES) + "/CT_small.dcm");
        if (r.ok()) parsed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(parsed.load(), 60);
}

}  // namespace
}  // namespace rdg::parsing
