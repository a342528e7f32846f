#include "gateway/monitoring/rpc_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "gateway/monitoring/process_metrics.h"

namespace rdg::monitoring {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RpcMetricsTest, CountsAndLatencyPerMethodAndCode) {
  RpcMetrics m;
  m.Record("/rdg.v1.ExamService/GetExam", "OK", absl::Milliseconds(3));
  m.Record("/rdg.v1.ExamService/GetExam", "OK", absl::Milliseconds(30));
  m.Record("/rdg.v1.ExamService/GetExam", "NOT_FOUND", absl::Seconds(90));
  std::string out;
  m.Render(out);
  EXPECT_THAT(out, HasSubstr("rdg_grpc_server_handled_total{method=\"/rdg.v1.ExamService/"
                             "GetExam\",code=\"OK\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("rdg_grpc_server_handling_seconds_bucket{method=\"/rdg.v1."
                             "ExamService/GetExam\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("le=\"0.05\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("le=\"60\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("le=\"+Inf\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("rdg_grpc_server_handling_seconds_count{method=\"/rdg.v1."
                             "ExamService/GetExam\"} 3\n"));
}

TEST(RpcMetricsTest, MethodsTheGatewayDoesNotServeShareOneLabel) {
  RpcMetrics m;
  for (int i = 0; i < 100; ++i) {
    m.Record("/evil.Service/M" + std::to_string(i), "UNIMPLEMENTED", absl::Milliseconds(1));
  }
  std::string out;
  m.Render(out);
  EXPECT_THAT(out, HasSubstr("{method=\"other\",code=\"UNIMPLEMENTED\"} 100\n"));
  EXPECT_THAT(out, Not(HasSubstr("evil")));
}

TEST(ProcessMetricsTest, TheStandardFiguresOfThisProcess) {
  std::string out;
  RenderProcessMetrics(out);
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_start_time_seconds "}) {
    EXPECT_THAT(out, HasSubstr(std::string("\n") + name)) << name;
  }
  // After 2020 and not in the future: the boot time and clock ticks are read right.
  const size_t at = out.find("\nprocess_start_time_seconds ") + 28;
  const double start = std::stod(out.substr(at));
  EXPECT_GT(start, 1.6e9);
  EXPECT_LE(start, static_cast<double>(absl::ToUnixSeconds(absl::Now()) + 1));
}

}  // namespace
}  // namespace rdg::monitoring
