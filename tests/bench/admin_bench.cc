// Administrators' figures benchmark (not part of the pass/fail suite): fills an index with N
// exams received evenly over one year from 40 clinics in 4 counties (98% read: claimed, final and
// acknowledged at random times, late ones recorded as breaches; 2% still open), then measures
// what each admin request does on the gateway — the index reads, the computation and the audit
// record it appends (a durable write) — without the gRPC hop:
//   tat      GetTurnaround: stages completed in the last 24 h / 7 d / 30 d, grouped by county
//   queues   GetQueues: per-queue depth, being read, oldest waiting, overdue
//   breaches ListBreaches --open
//   metrics  /metrics: the first scrape (catching up on every completion since the index began)
//            and the following ones (incremental), and /dashboard/data.json
// Usage: admin_bench [--postgres DSN_FILE] [N ...]   (default: 100000 1000000); with --postgres
// each N runs on SQLite and then on a fresh database of that cluster (tests/bench/bench_index.h).
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
#include "tests/bench/bench_index.h"
#include "tests/bench/bench_support.h"
#include "tests/mocks/fake_clock.h"

namespace {

using Clock = std::chrono::steady_clock;
using rdg::bench::Percentile;

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

void Fill(rdg::bench::BenchIndex& index, int n) {
  using rdg::bench::Hash;
  using rdg::bench::OneOf;
  const int64_t start = absl::ToUnixMicros(kStart);
  const int64_t year = absl::ToInt64Microseconds(kYear);
  const std::string priority =
      absl::StrCat("CASE ", Hash("i", 2, 5), " WHEN 0 THEN ",
                   rdg::storage::Number(rdg::storage::Priority::kStat), " WHEN 1 THEN ",
                   rdg::storage::Number(rdg::storage::Priority::kUrgent), " ELSE ",
                   rdg::storage::Number(rdg::storage::Priority::kRoutine), " END");
  const std::string received = absl::StrCat(start, " + i * ", year / n);
  const std::string stat =
      absl::StrCat(priority, " = ", rdg::storage::Number(rdg::storage::Priority::kStat));
  index.exec(absl::StrCat(
      rdg::bench::Rows(n),
      "INSERT INTO exams (exam_id, origin_institution, study_instance_uid, patient_id, exam_type, "
      "priority, state, queue, instance_count, total_bytes, received_at, updated_at, sla_due_at, "
      "claim_due_at) SELECT 'ex-b' || i, 'clinic-' || (i % 40), '1.2.826.0.1.' || i, 'P' || ",
      Hash("i", 1, n / 3 + 1), ", ", OneOf("i", 4, {"CT", "DX", "DX", "US", "ECG", "ECG", "LAB"}),
      ", ", priority, ", CASE WHEN (i + 1) % 50 = 0 THEN ",
      rdg::storage::Number(rdg::storage::ExamState::kRouted), " ELSE ",
      rdg::storage::Number(rdg::storage::ExamState::kFinal), " END, ", OneOf("i", 3, kQueues),
      ", 1, 52000, ", received, ", ", received, ", ", received, " + CASE WHEN ", stat,
      " THEN 1800000000 ELSE 86400000000 END, ", received, " + CASE WHEN ", stat,
      " THEN 600000000 ELSE 14400000000 END FROM s ORDER BY i"));
  // 98% read: first claim within 0-3 h, final within 0-30 h of receipt, acknowledged within
  // 0-48 h of the final; late ones were breaches, recorded when they completed. Completions are
  // numbered seq * 4 + stage (unique, as the feed needs).
  const std::string reviewer = OneOf("seq", 5, {"county-a", "county-b", "county-c", "county-d"});
  const std::string read =
      absl::StrCat("state = ", rdg::storage::Number(rdg::storage::ExamState::kFinal));
  const auto stage = [&](rdg::storage::Stage s, const std::string& due, int64_t max_us) {
    index.exec(absl::StrCat(
        "INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, priority, "
        "reviewing_institution, started_at, due_at, ended_at, end_seq) SELECT exam_id, ",
        rdg::storage::Number(s), ", origin_institution, queue, exam_type, priority, CASE WHEN ",
        read, " THEN ", reviewer, " ELSE '' END, received_at, ", due, ", CASE WHEN ", read,
        " THEN received_at + ", Hash("seq", rdg::storage::Number(s), 1000000), " * ",
        max_us / 1000000, " END, CASE WHEN ", read, " THEN seq * 4 + ", rdg::storage::Number(s),
        " END FROM exams"));
  };
  stage(rdg::storage::Stage::kReceivedToClaimed, "claim_due_at", int64_t{10800} * 1000000);
  stage(rdg::storage::Stage::kReceivedToFinal, "sla_due_at", int64_t{108000} * 1000000);
  index.exec(absl::StrCat(
      "INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, priority, "
      "reviewing_institution, started_at, due_at, ended_at, end_seq) SELECT f.exam_id, ",
      rdg::storage::Number(rdg::storage::Stage::kFinalToAcknowledged),
      ", f.origin_institution, f.queue, f.exam_type, f.priority, f.reviewing_institution, "
      "f.ended_at, f.ended_at + 86400000000, f.ended_at + ",
      Hash("e.seq", 6, 1000000), " * 172800, e.seq * 4 + ",
      rdg::storage::Number(rdg::storage::Stage::kFinalToAcknowledged),
      " FROM exam_stages f JOIN exams e ON e.exam_id = f.exam_id WHERE f.stage = ",
      rdg::storage::Number(rdg::storage::Stage::kReceivedToFinal), " AND f.ended_at IS NOT NULL"));
  index.exec("UPDATE exam_stages SET breached_at = ended_at WHERE ended_at > due_at");
  if (index.backend == "PostgreSQL") {  // new completions are numbered after these
    index.exec(
        "UPDATE feed_heads SET seq = (SELECT MAX(end_seq) FROM exam_stages) "
        "WHERE name = 'stages'");
  }
  // The gateway's sweep records the open exams' breaches (all long past due by now); then the
  // statistics (and on PostgreSQL the visibility map autovacuum keeps on a running index).
  for (;;) {
    auto swept = index.store->DetectBreaches(kStart + kYear, 10000);
    if (!swept.ok() || swept->size() < 10000) break;
  }
  index.analyze();
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

void Run(const std::string& pg_dsn_file, int n) {
  rdg::bench::BenchIndex index =
      rdg::bench::OpenBenchIndex(pg_dsn_file, "rdg-adminbench-" + std::to_string(n), 4);
  const auto fill_start = Clock::now();
  Fill(index, n);
  const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
  rdg::storage::IndexStore* store = index.store.get();
  const rdg::v1::GatewayConfig config = Province();
  const rdg::config::InstitutionDirectory directory(config);
  rdg::FakeClock clock(kStart + kYear);
  const absl::Time now = clock.Now();
  std::printf("%s: N = %d exams over one year (%d open), filled in %.1f s\n", index.backend.c_str(),
              n, n / 50, fill_s);

  auto audit = [&](const char* action) {
    if (!store
             ->AppendAudit(rdg::storage::AuditOf(now, "province", "admin",
                                                 rdg::storage::Role::kAdmin, action, "", ""))
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

  rdg::monitoring::Metrics metrics(config, {&store->sla(), &store->worklist(), &store->audit(),
                                            &directory, nullptr, nullptr, &clock});
  const Figures first = Measure(1, [&] { return metrics.Render()->size(); });
  Print("/metrics, first scrape after start", first, "bytes");
  Print("/metrics, later scrapes", Measure(200, [&] { return metrics.Render()->size(); }), "bytes");
  Print("/dashboard/data.json",
        Measure(50,
                [&] {
                  std::vector<std::string> names(kQueues);
                  return rdg::monitoring::DashboardData(
                             {store->sla(), store->worklist(), store->audit(),
                              store->identity_conflicts()},
                             directory, names, now, absl::UTCTimeZone())
                      ->size();
                }),
        "bytes");
  std::printf(
      "RESULT backend=%s n=%d tat24h_p99_ms=%.3f queues_p99_ms=%.3f metrics_first_ms=%.0f\n",
      index.backend.c_str(), n, tat24.p99, queues.p99, first.p50);
  index.store.reset();
  index.drop();
}

}  // namespace

int main(int argc, char** argv) { return rdg::bench::RunSideBySide(argc, argv, Run); }
