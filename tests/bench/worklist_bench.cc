// Worklist benchmark (not part of the pass/fail suite): fills a SQLite index with N exams spread
// over the demo province's queues — 2% still open (ROUTED), the rest FINAL, as in a running
// platform — then measures worklist query latency (p50/p99) for a county reader and claims/s
// with 16 concurrent readers. Usage: worklist_bench [N ...]   (default: 100000 1000000)
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/sqlite_index_store.h"
#include "tests/bench/bench_support.h"

namespace {

using Clock = std::chrono::steady_clock;
using rdg::bench::Percentile;
using rdg::storage::SqliteIndexStore;

const std::vector<std::string> kQueues = {
    "county-a/imaging",       "county-a/ecg",     "county-a/lab",
    "county-b/imaging",       "county-b/ecg",     "county-b/lab",
    "city/radiology-consult", "city/ecg-consult", "city/lab-consult"};
const std::vector<std::string> kCountyA = {"county-a/imaging", "county-a/ecg", "county-a/lab"};

void Fill(SqliteIndexStore& store, const std::string& db_path, int n) {
  std::mt19937 rng(42);
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  const rdg::v1::Priority priorities[] = {rdg::v1::STAT, rdg::v1::URGENT, rdg::v1::ROUTINE,
                                          rdg::v1::ROUTINE, rdg::v1::ROUTINE};
  std::vector<rdg::storage::NewObject> batch;
  for (int i = 0; i < n; ++i) {
    rdg::storage::NewObject o;
    const std::string study = "1.2.826.0.1." + std::to_string(i);
    o.exam.origin_institution = o.object.origin_institution = "clinic-" + std::to_string(i % 40);
    o.exam.study_instance_uid = study;
    o.exam.patient.patient_id = "P" + std::to_string(rng() % (n / 3 + 1));
    o.exam.exam_type = i % 5 == 0 ? "ECG" : "CT";
    o.object.sop_instance_uid = study + ".1";
    o.object.sha256_hex = std::to_string(i);
    o.object.size = 52000;
    o.object.received_at = t0 + absl::Seconds(i);
    const auto p = priorities[rng() % 5];
    o.routing = {kQueues[rng() % kQueues.size()], p,
                 t0 + absl::Seconds(i) + absl::Minutes(p == rdg::v1::STAT ? 30 : 1440),
                 absl::InfiniteFuture(), "bench"};
    batch.push_back(std::move(o));
    if (batch.size() == 5000 || i == n - 1) rdg::bench::CommitOrDie(store, batch);
  }
  // 98% of exams are already read (FINAL); only the rest sit in worklists.
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  sqlite3_exec(db, "UPDATE exams SET state = 5 WHERE seq % 50 != 0", nullptr, nullptr, nullptr);
  sqlite3_exec(db, "ANALYZE", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

void Run(int n) {
  const auto filled = rdg::bench::FilledIndex("rdg-wlbench-", n, Fill);
  const std::string& path = filled.first;
  const double fill_s = filled.second;
  auto store = *SqliteIndexStore::Open(path, {/*reader_connections=*/16});
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000) + absl::Seconds(n);

  // Worklist: the first page (50) of county A's three queues, unfiltered and filtered.
  auto measure = [&](rdg::storage::WorklistQuery q, int rounds) {
    std::vector<double> ms;
    size_t rows = 0;
    for (int i = 0; i < rounds; ++i) {
      auto t = Clock::now();
      auto page = store->ListWorklist(q, now);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      rows = page->entries.size();
    }
    std::printf("  %-34s p50 %6.3f ms  p99 %6.3f ms  (%zu rows/page)\n",
                q.exam_types.empty() && q.priorities.empty() ? "worklist county-a, page 50"
                                                             : "worklist county-a, CT + STAT only",
                Percentile(ms, 0.5), Percentile(ms, 0.99), rows);
    return Percentile(ms, 0.99);
  };
  rdg::storage::WorklistQuery q;
  q.queues = kCountyA;
  q.limit = 50;
  std::printf("N = %d exams (%d open), filled in %.1f s\n", n, n / 50, fill_s);
  const double p99 = measure(q, 2000);
  q.exam_types = {"CT"};
  q.priorities = {rdg::v1::STAT};
  measure(q, 2000);

  // Claims: 16 readers claim distinct open exams as fast as they can for ~3 s.
  rdg::storage::WorklistQuery all;
  all.queues = kQueues;
  all.limit = 1000;
  auto open = store->ListWorklist(all, now);
  std::vector<std::string> ids;
  for (const auto& e : open->entries) ids.push_back(e.exam.exam_id);
  std::atomic<size_t> next{0};
  std::atomic<int> claimed{0};
  auto t = Clock::now();
  std::vector<std::thread> readers;
  for (int r = 0; r < 16; ++r) {
    readers.emplace_back([&, r] {
      for (size_t i = next++; i < ids.size(); i = next++) {
        claimed += store
                       ->ClaimExam(ids[i], "reader-" + std::to_string(r), "county-a", now,
                                   absl::Minutes(15), rdg::storage::ClaimAction::kClaim)
                       .ok();
      }
    });
  }
  for (auto& th : readers) th.join();
  const double claim_s = std::chrono::duration<double>(Clock::now() - t).count();
  std::printf("  claims, 16 concurrent readers      %6.0f claims/s (%d claims, each durable)\n",
              claimed / claim_s, claimed.load());
  std::printf("RESULT n=%d worklist_p99_ms=%.3f claims_per_s=%.0f\n", n, p99, claimed / claim_s);
  store.reset();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace

int main(int argc, char** argv) {
  for (int n : rdg::bench::Sizes(argc, argv)) Run(n);
  return 0;
}
