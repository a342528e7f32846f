// Streaming calls alive in this process, by kind: each reactor holds a LiveStream from its
// construction to its deletion. /metrics shows the figures, so a reactor that is never freed (a
// leak) or freed twice (a negative count) is visible in production and in the stress tests.
#pragma once

#include <atomic>
#include <cstdint>

namespace rdg {

struct LiveStreamCounts {
  std::atomic<int64_t> uploads{0};
  std::atomic<int64_t> watches{0};
  std::atomic<int64_t> object_streams{0};  //!< downloads and fetches
};

//! The process's counts (reactors are process-wide objects of gRPC's callback server).
inline LiveStreamCounts& LiveStreams() {
  static LiveStreamCounts counts;
  return counts;
}

//! Counts one live stream of a kind for as long as it exists.
class LiveStream {
 public:
  explicit LiveStream(std::atomic<int64_t>& count) : count_(count) { count_.fetch_add(1); }
  ~LiveStream() { count_.fetch_sub(1); }
  LiveStream(const LiveStream&) = delete;
  LiveStream& operator=(const LiveStream&) = delete;

 private:
  std::atomic<int64_t>& count_;
};

}  // namespace rdg
