// Admission of uploads: at most limits.max_concurrent_uploads at once on this gateway and
// limits.max_concurrent_uploads_per_institution for one institution. One UploadSlots is shared by
// the gRPC upload streams and the STOW-RS requests, so a clinic cannot pass its share by
// switching protocol, nor one county's batch crowd out the others.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rdg::ingest {

class UploadSlots {
 public:
  //! A held slot; released when destroyed. Move-only.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }

    bool held() const { return owner_ != nullptr; }
    void Release();

   private:
    friend class UploadSlots;
    Slot(UploadSlots* owner, std::string institution)
        : owner_(owner), institution_(std::move(institution)) {}
    UploadSlots* owner_ = nullptr;
    std::string institution_;
  };

  UploadSlots(int max_total, int max_per_institution)
      : max_total_(max_total), max_per_institution_(max_per_institution) {}

  //! A slot for one upload of `institution`, or UNAVAILABLE naming the limit that was reached
  //! (a transient refusal: the client retries shortly).
  absl::StatusOr<Slot> Acquire(const std::string& institution);

  //! Slots held now, on the whole gateway and by `institution`.
  int held() const;
  int held_by(const std::string& institution) const;

 private:
  void Release(const std::string& institution);

  const int max_total_;
  const int max_per_institution_;
  mutable absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> per_institution_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdg::ingest
