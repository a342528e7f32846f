// The defaults of a `parsing { … }` configuration, shared by the gateway and the clinic agent
// (both parse untrusted objects in rdg-parser processes).
#pragma once

#include <cstdint>

#include "rdg/v1/config.pb.h"

namespace rdg::parsing {

//! Fills unset fields: 2 processes, 30 s, 1 GiB, nesting 64, 500,000 elements.
inline void ApplyParserDefaults(rdg::v1::ParserConfig& config) {
  if (config.processes() <= 0) config.set_processes(2);
  if (config.timeout_seconds() <= 0) config.set_timeout_seconds(30);
  if (config.memory_bytes() <= 0) config.set_memory_bytes(int64_t{1} << 30);
  if (config.max_sequence_depth() <= 0) config.set_max_sequence_depth(64);
  if (config.max_elements() <= 0) config.set_max_elements(500000);
}

}  // namespace rdg::parsing
