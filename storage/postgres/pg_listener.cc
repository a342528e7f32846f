#include "storage/postgres/pg_listener.h"

#include <utility>

#include "storage/postgres/pg_connection.h"

namespace rdg::storage::pg {

Listener::Listener(std::string conninfo, std::string channel,
                   std::function<void(const std::string& payload)> heard)
    : conninfo_(std::move(conninfo)), channel_(std::move(channel)), heard_(std::move(heard)) {
  thread_ = std::thread([this] { Loop(); });
}

Listener::~Listener() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

bool Listener::Stopping(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
}

void Listener::Loop() {
  while (!Stopping(absl::ZeroDuration())) {
    auto conn = Connection::Open(conninfo_);
    if (!conn.ok() || !(*conn)->Run("LISTEN " + channel_).ok()) {
      if (Stopping(absl::Seconds(1))) return;
      continue;
    }
    heard_("");  // what was sent before is unknown
    while (!(*conn)->broken()) {
      // Wait for the socket (a bounded wait: a stop is seen within it).
      if (!(*conn)->WaitReadable(absl::Milliseconds(250))) {
        if (Stopping(absl::ZeroDuration())) return;
        continue;
      }
      auto payloads = (*conn)->TakeNotifications();
      if (!payloads.ok()) break;  // lost: connect again
      for (const std::string& payload : *payloads) heard_(payload);
    }
  }
}

}  // namespace rdg::storage::pg
