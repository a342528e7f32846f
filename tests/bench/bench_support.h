// Shared by the C++ benchmarks: nearest-rank percentiles of timings and bulk index fills.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/sqlite_index_store.h"

namespace rdg::bench {

//! The value at fraction `p` (0..1) of the sorted timings.
inline double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

//! Commits `batch` in one transaction (exits with the reason if anything fails) and clears it.
inline void CommitOrDie(storage::SqliteIndexStore& store, std::vector<storage::NewObject>& batch) {
  for (const auto& r : store.CommitObjects(batch)) {
    if (!r.ok()) {
      std::fprintf(stderr, "fill failed: %s\n", std::string(r.status().message()).c_str());
      std::exit(1);
    }
  }
  batch.clear();
}

//! A fresh index of `n` exams in the temporary folder `<tmp>/<prefix><n>`, written by
//! `fill(store, path, n)` and closed again. Returns the index's path and the fill's seconds.
template <typename Fill>
std::pair<std::string, double> FilledIndex(const std::string& prefix, int n, Fill fill) {
  const std::string dir = std::filesystem::temp_directory_path() / (prefix + std::to_string(n));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/index.sqlite";
  const auto start = std::chrono::steady_clock::now();
  {
    auto store = storage::SqliteIndexStore::Open(path);
    if (!store.ok()) {
      std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(),
                   std::string(store.status().message()).c_str());
      std::exit(1);
    }
    fill(**store, path, n);
  }
  return {path, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

//! The index sizes to run: the command line's, or 100 K and 1 M.
inline std::vector<int> Sizes(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {100000, 1000000};
  return sizes;
}

}  // namespace rdg::bench
