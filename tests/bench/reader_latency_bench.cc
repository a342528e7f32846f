// Reader latency driver (not part of the pass/fail suite; readers_bench.py runs it): R reader
// threads, each with its own mTLS channel (connected and used once before timing starts), call
// GetWorklist on a fixed schedule of one per --interval-ms (a call's time runs from when it was
// due, so a reader held up by a slow answer is not let off the calls it could not make); after
// every
// --claim-every worklists they claim one listed exam and release it at once. Until SIGINT or
// SIGTERM (or --seconds), then one line of JSON: count, p50, p99 and max of the answered worklist
// and claim calls, and the refused ones by status code (readers share one identity, so some
// claims find the exam taken by another).
//
//   reader_latency_bench --gateway 127.0.0.1:PORT --ca ca.pem --cert r.pem --key r.key
//                        [--readers 50] [--interval-ms 100] [--claim-every 5] [--seconds 0]
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "clients/common/connection.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "tests/bench/bench_support.h"

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void Stop(int) { g_stop = true; }

//! Timings of one kind of call over all readers.
struct Series {
  std::mutex mu;
  std::vector<double> ms;
  std::map<std::string, int> errors;  //!< status code name -> count

  //! Only answered calls count in the percentiles; refusals (another reader's claim) are
  //! counted by code instead, so that quick refusals do not flatter the figures.
  void Add(double took_ms, const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    if (status.ok()) {
      ms.push_back(took_ms);
    } else {
      ++errors[rdg::clients::StatusCodeName(status.error_code())];
    }
  }
  std::string Json() {
    std::lock_guard<std::mutex> lock(mu);
    std::string errs;
    for (const auto& [code, n] : errors) {
      errs += (errs.empty() ? "" : ",") + ("\"" + code + "\":" + std::to_string(n));
    }
    char buf[256];
    if (ms.empty()) {
      std::snprintf(buf, sizeof buf, "{\"calls\":0,\"errors\":{%s}}", errs.c_str());
    } else {
      std::snprintf(buf, sizeof buf,
                    "{\"calls\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
                    "\"errors\":{%s}}",
                    ms.size(), rdg::bench::Percentile(ms, 0.50), rdg::bench::Percentile(ms, 0.99),
                    rdg::bench::Percentile(ms, 1.0), errs.c_str());
    }
    return buf;
  }
};

//! Runs `call` and records its time from `intended` (when it should have started: a reader held
//! up by a slow call starts its next one late, and that wait counts too) to its answer.
template <typename Call>
grpc::Status Timed(Series& series, Clock::time_point intended, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status status = call(ctx);
  series.Add(std::chrono::duration<double, std::milli>(Clock::now() - intended).count(), status);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reader latency driver (tests/bench/readers_bench.py)"};
  rdg::clients::ConnectionOptions connection;
  connection.AddTo(app);
  int readers = 50, interval_ms = 100, claim_every = 5;
  double seconds = 0;
  app.add_option("--readers", readers, "reader threads, one channel each")
      ->check(CLI::Range(1, 1000));
  app.add_option("--interval-ms", interval_ms, "pause between one reader's calls");
  app.add_option("--claim-every", claim_every, "claim (and release) after every Nth worklist");
  app.add_option("--seconds", seconds, "stop after this long (0: at SIGINT/SIGTERM)");
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGINT, Stop);
  std::signal(SIGTERM, Stop);

  Series worklist, claim;
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r) {
    auto channel = connection.Connect();
    if (channel == nullptr) return 1;
    threads.emplace_back([&, r, channel] {
      auto stub = rdg::v1::ReadingService::NewStub(channel);
      {
        // Connected (TLS handshake) and answered once before anything is timed.
        grpc::ClientContext ctx;
        rdg::v1::WorklistRequest first;
        rdg::v1::WorklistResponse page;
        stub->GetWorklist(&ctx, first, &page).ok();
      }
      // Readers start spread over one interval, as people do, not in lockstep; each then keeps
      // a fixed schedule of one worklist per interval.
      const auto period = std::chrono::milliseconds(interval_ms);
      auto next = Clock::now() + period * r / readers;
      for (int i = 1; !g_stop; ++i, next += period) {
        std::this_thread::sleep_until(next);  // keeping the schedule is this loop's purpose
        rdg::v1::WorklistRequest request;
        request.set_page_size(20);
        rdg::v1::WorklistResponse page;
        grpc::Status listed = Timed(worklist, next, [&](grpc::ClientContext& ctx) {
          return stub->GetWorklist(&ctx, request, &page);
        });
        if (listed.ok() && claim_every > 0 && i % claim_every == 0 && page.items_size() > 0) {
          rdg::v1::ClaimRequest take;
          take.set_exam_id(page.items(r % page.items_size()).exam().exam_id());
          rdg::v1::Claim held;
          grpc::Status claimed = Timed(claim, Clock::now(), [&](grpc::ClientContext& ctx) {
            return stub->ClaimExam(&ctx, take, &held);
          });
          if (claimed.ok()) {
            grpc::ClientContext ctx;
            stub->ReleaseClaim(&ctx, take, &held).ok();  // untimed: puts the exam back
          }
        }
      }
    });
  }
  const auto started = Clock::now();
  while (!g_stop) {
    if (seconds > 0 && Clock::now() - started >= std::chrono::duration<double>(seconds)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polls the stop flag
  }
  g_stop = true;
  for (auto& t : threads) t.join();
  std::printf("{\"readers\":%d,\"seconds\":%.2f,\"worklist\":%s,\"claim\":%s}\n", readers,
              std::chrono::duration<double>(Clock::now() - started).count(),
              worklist.Json().c_str(), claim.Json().c_str());
  return 0;
}
