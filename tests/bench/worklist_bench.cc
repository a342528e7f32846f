// Worklist benchmark (not part of the pass/fail suite): fills an index with N exams spread over
// the demo province's queues — 2% still open (ROUTED, their SLA clocks running), the rest FINAL,
// as in a running platform — then measures worklist query latency (p50/p99) for a county reader
// and claims/s with 16 concurrent readers (each claim a durable transaction: the claim, the
// exam's state, its CLAIMED event, the end of its claim stage), bare and with the audit record
// the gateway appends after each.
// Usage: worklist_bench [--postgres DSN_FILE] [N ...]   (default: 100000 1000000)
// With --postgres (the file `tests/integration/pg_cluster.py start DIR` writes) each N runs on
// SQLite and then on a fresh database of that cluster, on the same data.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/bench_index.h"
#include "tests/bench/bench_support.h"

namespace {

using Clock = std::chrono::steady_clock;
using rdg::bench::Hash;
using rdg::bench::OneOf;
using rdg::bench::Percentile;

const std::vector<std::string> kQueues = {
    "county-a/imaging",       "county-a/ecg",     "county-a/lab",
    "county-b/imaging",       "county-b/ecg",     "county-b/lab",
    "city/radiology-consult", "city/ecg-consult", "city/lab-consult"};
const std::vector<std::string> kCountyA = {"county-a/imaging", "county-a/ecg", "county-a/lab"};
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

void Fill(rdg::bench::BenchIndex& index, int n) {
  const int64_t t0 = absl::ToUnixMicros(kT0);
  const std::string priority =
      absl::StrCat("CASE ", Hash("i", 2, 5), " WHEN 0 THEN ",
                   rdg::storage::Number(rdg::storage::Priority::kStat), " WHEN 1 THEN ",
                   rdg::storage::Number(rdg::storage::Priority::kUrgent), " ELSE ",
                   rdg::storage::Number(rdg::storage::Priority::kRoutine), " END");
  const std::string received = absl::StrCat(t0, " + i * 1000000");
  index.exec(absl::StrCat(
      rdg::bench::Rows(n),
      "INSERT INTO exams (exam_id, origin_institution, study_instance_uid, patient_id, exam_type, "
      "modalities, priority, state, queue, instance_count, total_bytes, received_at, updated_at, "
      "sla_due_at, claim_due_at) SELECT 'ex-b' || i, 'clinic-' || (i % 40), '1.2.826.0.1.' || i, "
      "'P' || ",
      Hash("i", 1, n / 3 + 1), ", CASE WHEN i % 5 = 0 THEN 'ECG' ELSE 'CT' END, ",
      "CASE WHEN i % 5 = 0 THEN 'ECG' ELSE 'CT' END, ", priority,
      ", CASE WHEN (i + 1) % 50 = 0 THEN ", rdg::storage::Number(rdg::storage::ExamState::kRouted),
      " ELSE ", rdg::storage::Number(rdg::storage::ExamState::kFinal), " END, ",
      OneOf("i", 3, kQueues), ", 1, 52000, ", received, ", ", received, ", ", received,
      " + CASE WHEN ", priority, " = ", rdg::storage::Number(rdg::storage::Priority::kStat),
      " THEN 1800000000 ELSE 86400000000 END, ", std::numeric_limits<int64_t>::max(),
      " FROM s ORDER BY i"));
  // The open exams' SLA clocks run (a claim ends the first).
  for (int stage : {rdg::storage::Number(rdg::storage::Stage::kReceivedToClaimed),
                    rdg::storage::Number(rdg::storage::Stage::kReceivedToFinal)}) {
    index.exec(absl::StrCat(
        "INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, priority, "
        "started_at, due_at) SELECT exam_id, ",
        stage,
        ", origin_institution, queue, exam_type, "
        "priority, received_at, ",
        stage == rdg::storage::Number(rdg::storage::Stage::kReceivedToFinal) ? "sla_due_at"
                                                                             : "claim_due_at",
        " FROM exams WHERE state = ", rdg::storage::Number(rdg::storage::ExamState::kRouted)));
  }
  index.analyze();
}

void Run(const std::string& pg_dsn_file, int n) {
  rdg::bench::BenchIndex index =
      rdg::bench::OpenBenchIndex(pg_dsn_file, "rdg-wlbench-" + std::to_string(n), 16);
  const auto fill_start = Clock::now();
  Fill(index, n);
  const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
  rdg::storage::IndexStore& store = *index.store;
  const absl::Time now = kT0 + absl::Seconds(n);

  // Worklist: the first page (50) of county A's three queues, unfiltered and filtered.
  auto measure = [&](rdg::storage::WorklistQuery q, int rounds) {
    std::vector<double> ms;
    size_t rows = 0;
    for (int i = 0; i < rounds; ++i) {
      auto t = Clock::now();
      auto page = store.ListWorklist(q, now);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      if (!page.ok()) rdg::bench::Die(std::string(page.status().message()));
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
  std::printf("%s: N = %d exams (%d open), filled in %.1f s\n", index.backend.c_str(), n, n / 50,
              fill_s);
  const double p99 = measure(q, 2000);
  q.exam_types = {"CT"};
  q.priorities = {rdg::storage::Priority::kStat};
  measure(q, 2000);

  // Claims: 16 readers claim distinct open exams as fast as they can.
  rdg::storage::WorklistQuery all;
  all.queues = kQueues;
  all.limit = 1000;
  std::vector<std::string> ids;
  for (;;) {
    auto open = store.ListWorklist(all, now);
    if (!open.ok()) rdg::bench::Die(std::string(open.status().message()));
    for (const auto& e : open->entries) ids.push_back(e.exam.exam_id);
    if (open->next_cursor.empty() || ids.size() >= 8000) break;
    all.after = open->next_cursor;
  }
  // Half the exams claimed bare, half as the gateway's reading desk claims: the claim, then its
  // audit record in a transaction of its own (every audited call appends to the one chain, whose
  // end row each append holds until its COMMIT).
  const size_t half = ids.size() / 2;
  auto claim_all = [&](size_t from, size_t to, bool audited) {
    std::atomic<size_t> next{from};
    std::atomic<int> claimed{0};
    const auto t = Clock::now();
    std::vector<std::thread> readers;
    for (int r = 0; r < 16; ++r) {
      readers.emplace_back([&, r] {
        const std::string reader = "reader-" + std::to_string(r);
        for (size_t i = next++; i < to; i = next++) {
          bool ok = store
                        .ClaimExam(ids[i], reader, "county-a", now, absl::Minutes(15),
                                   rdg::storage::ClaimAction::kClaim)
                        .ok();
          if (ok && audited) {
            ok =
                store.audit()
                    .AppendAudit(rdg::storage::AuditOf(
                        now, "county-a", reader, rdg::storage::Role::kReader, "claim_exam", ids[i]))
                    .ok();
          }
          claimed += ok;
        }
      });
    }
    for (auto& th : readers) th.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - t).count();
    std::printf("  claims%s, 16 concurrent readers %6.0f claims/s (%d claims, each durable)\n",
                audited ? " + audit" : "        ", claimed / seconds, claimed.load());
    return claimed / seconds;
  };
  const double claims_per_s = claim_all(0, half, false);
  const double audited_per_s = claim_all(half, ids.size(), true);
  std::printf(
      "RESULT backend=%s n=%d worklist_p99_ms=%.3f claims_per_s=%.0f audited_claims_per_s=%.0f\n",
      index.backend.c_str(), n, p99, claims_per_s, audited_per_s);
  index.store.reset();
  index.drop();
}

}  // namespace

int main(int argc, char** argv) { return rdg::bench::RunSideBySide(argc, argv, Run); }
