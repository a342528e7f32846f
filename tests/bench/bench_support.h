// Shared by the C++ benchmarks: nearest-rank percentiles of timings (bulk index fills:
// bench_index.h).
#pragma once

#include <algorithm>
#include <vector>

namespace rdg::bench {

//! The value at fraction `p` (0..1) of the sorted timings.
inline double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace rdg::bench
