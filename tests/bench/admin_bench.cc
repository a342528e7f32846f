// Administrators' figures benchmark (not part of the pass/fail suite): fills a SQLite index with N
// exams received evenly over one year from 40 clinics in 4 counties (98% read: claimed, final and
// acknowledged at random times, late ones recorded as breaches; 2% still open), then measures
// what each admin request does on the gateway — the index reads, the computation and the audit
// record it appends (a durable write) — without the gRPC hop:
//   tat      GetTurnaround: stages completed in the last 24 h / 7 d / 30 d, grouped by county
//   queues   GetQueues: per-queue depth, being read, oldest waiting, overdue
//   breaches ListBreaches --open
//   metrics  /metrics: the first scrape (catching up on every completion since the index began)
//            and the following ones (incremental), and /dashboard/data.json
// Usage: admin_bench [N ...]   (default: 100000 1000000)
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gateway/config/institution_directory.h"
#include "gateway/monitoring/dashboard.h"
#include "gateway/monitoring/metrics.h"
#include "gateway/monitoring/turnaround.h"
#include "storage/sqlite_index_store.h"
#include "tests/bench/bench_support.h"
#include "tests/mocks/fake_clock.h"

namespace {

using Clock = std::chrono::steady_clock;
using rdg::bench::Percentile;
using rdg::storage::SqliteIndexStore;

const std::vector<std::string> kQueues = {
    "county-a/imaging", "county-a/ecg",     "county-a/lab",
    "county-b/imaging", "county-b/ecg",     "county-b/lab",
    "county-c/imaging", "county-d/imaging", "city/radiology-consult"};
const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kYear = absl::Hours(24 * 365);

rdg::v1::GatewayConfig Province() {
  rdg::v1::GatewayConfig config;
  for (int i = 0; i < 40; ++i) {
    auto* inst = config.add_institutions();
    inst->set_id("clinic-" + std::to_string(i));
    inst->set_community(std::string("county-") + static_cast<char>('a' + i % 4));
  }
  for (const auto& q : kQueues) config.add_queues()->set_name(q);
  return config;
}

void Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "fill failed: %s\n", error);
    std::exit(1);
  }
}

void Fill(SqliteIndexStore& store, const std::string& db_path, int n) {
  std::mt19937 rng(42);
  const rdg::v1::Priority priorities[] = {rdg::v1::STAT, rdg::v1::URGENT, rdg::v1::ROUTINE,
                                          rdg::v1::ROUTINE, rdg::v1::ROUTINE};
  const char* types[] = {"CT", "DX", "DX", "US", "ECG", "ECG", "LAB"};
  std::vector<rdg::storage::NewObject> batch;
  for (int i = 0; i < n; ++i) {
    rdg::storage::NewObject o;
    const std::string study = "1.2.826.0.1." + std::to_string(i);
    o.exam.origin_institution = o.object.origin_institution = "clinic-" + std::to_string(i % 40);
    o.exam.study_instance_uid = study;
    o.exam.patient.patient_id = "P" + std::to_string(rng() % (n / 3 + 1));
    o.exam.exam_type = types[rng() % 7];
    o.object.sop_instance_uid = study + ".1";
    o.object.sha256_hex = std::to_string(i);
    o.object.size = 52000;
    o.object.received_at = kStart + kYear * (static_cast<double>(i) / n);
    const auto p = priorities[rng() % 5];
    const absl::Time t = o.object.received_at;
    o.routing = {kQueues[rng() % kQueues.size()], p,
                 t + absl::Minutes(p == rdg::v1::STAT ? 30 : 1440),
                 t + absl::Minutes(p == rdg::v1::STAT ? 10 : 240), "bench"};
    batch.push_back(std::move(o));
    if (batch.size() == 5000 || i == n - 1) rdg::bench::CommitOrDie(store, batch);
  }
  // 98% read: first claim within 0-3 h, final within 0-30 h of receipt, acknowledged within
  // 0-48 h of the final; late ones were breaches, recorded when they completed.
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  Exec(db, "BEGIN");
  Exec(db, "UPDATE exams SET state = 5 WHERE seq % 50 != 0");
  Exec(db,
       "UPDATE exam_stages SET ended_at = started_at + abs(random()) % 10800000000, "
       "reviewing_institution = 'county-' || char(97 + rowid % 4) "
       "WHERE stage = 1 AND exam_id IN (SELECT exam_id FROM exams WHERE state = 5)");
  Exec(db,
       "UPDATE exam_stages SET ended_at = started_at + abs(random()) % 108000000000, "
       "reviewing_institution = 'county-' || char(97 + rowid % 4) "
       "WHERE stage = 2 AND exam_id IN (SELECT exam_id FROM exams WHERE state = 5)");
  Exec(db,
       "INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, "
       "priority, reviewing_institution, started_at, due_at, ended_at) "
       "SELECT exam_id, 3, origin_institution, queue, exam_type, priority, "
       "reviewing_institution, ended_at, ended_at + 86400000000, "
       "ended_at + abs(random()) % 172800000000 FROM exam_stages "
       "WHERE stage = 2 AND ended_at IS NOT NULL");
  Exec(db, "UPDATE exam_stages SET end_seq = rowid WHERE ended_at IS NOT NULL");
  Exec(db, "UPDATE exam_stages SET breached_at = ended_at WHERE ended_at > due_at");
  Exec(db, "COMMIT");
  Exec(db, "ANALYZE");
  sqlite3_close(db);
  // The gateway's sweep records the open exams' breaches (all long past due by now).
  for (;;) {
    auto swept = store.DetectBreaches(kStart + kYear, 10000);
    if (!swept.ok() || swept->size() < 10000) break;
  }
}

struct Figures {
  double p50, p99;
  size_t rows;
};

Figures Measure(int rounds, const std::function<size_t()>& once) {
  std::vector<double> ms;
  size_t rows = 0;
  for (int i = 0; i < rounds; ++i) {
    auto t = Clock::now();
    rows = once();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  return {Percentile(ms, 0.5), Percentile(ms, 0.99), rows};
}

void Print(const char* what, const Figures& f, const char* unit) {
  std::printf("  %-40s p50 %8.3f ms  p99 %8.3f ms  (%zu %s)\n", what, f.p50, f.p99, f.rows, unit);
}

void Run(int n) {
  const auto filled = rdg::bench::FilledIndex("rdg-adminbench-", n, Fill);
  const std::string& path = filled.first;
  const double fill_s = filled.second;
  auto store = *SqliteIndexStore::Open(path);
  const rdg::v1::GatewayConfig config = Province();
  const rdg::config::InstitutionDirectory directory(config);
  rdg::FakeClock clock(kStart + kYear);
  const absl::Time now = clock.Now();
  std::printf("N = %d exams over one year (%d open), filled in %.1f s\n", n, n / 50, fill_s);

  auto audit = [&](const char* action) {
    if (!store
             ->AppendAudit(
                 rdg::storage::AuditOf(now, "province", "admin", rdg::v1::ADMIN, action, "", ""))
             .ok()) {
      std::exit(1);
    }
  };
  auto tat = [&](absl::Duration window) {
    return [&, window] {
      auto stages = store->ListStagesEnded(now - window, now);
      auto groups = rdg::monitoring::ComputeTurnaround(*stages, rdg::v1::BY_COUNTY, directory);
      audit("admin_turnaround");
      return stages->size();
    };
  };
  const Figures tat24 = Measure(200, tat(absl::Hours(24)));
  Print("tat --since 24h --by county", tat24, "stages");
  Print("tat --since 7d --by county", Measure(50, tat(absl::Hours(24 * 7))), "stages");
  Print("tat --since 30d --by county", Measure(20, tat(absl::Hours(24 * 30))), "stages");
  const Figures queues = Measure(500, [&] {
    auto figures = store->ListQueueFigures(now);
    audit("admin_queues");
    return figures->size();
  });
  Print("queues", queues, "queues");
  Print("breaches --open",
        Measure(200,
                [&] {
                  rdg::storage::BreachQuery q;
                  q.open_only = true;
                  auto b = store->ListBreaches(q);
                  audit("admin_breaches");
                  return b->size();
                }),
        "breaches");

  rdg::monitoring::Metrics metrics(config, {store.get(), &directory, nullptr, nullptr, &clock});
  const Figures first = Measure(1, [&] { return metrics.Render()->size(); });
  Print("/metrics, first scrape after start", first, "bytes");
  Print("/metrics, later scrapes", Measure(200, [&] { return metrics.Render()->size(); }), "bytes");
  Print("/dashboard/data.json",
        Measure(50,
                [&] {
                  std::vector<std::string> names(kQueues);
                  return rdg::monitoring::DashboardData(*store, directory, names, now,
                                                        absl::UTCTimeZone())
                      ->size();
                }),
        "bytes");
  std::printf("RESULT n=%d tat24h_p99_ms=%.3f queues_p99_ms=%.3f metrics_first_ms=%.0f\n", n,
              tat24.p99, queues.p99, first.p50);
  store.reset();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace

int main(int argc, char** argv) {
  for (int n : rdg::bench::Sizes(argc, argv)) Run(n);
  return 0;
}
