// The standard process metrics of Prometheus client libraries (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds), read from /proc/self for /metrics.
#pragma once

#include <string>

namespace rdg::monitoring {

//! Appends the process metrics of this process; a figure /proc does not give is left out.
void RenderProcessMetrics(std::string& out);

}  // namespace rdg::monitoring
