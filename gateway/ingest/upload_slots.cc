#include "gateway/ingest/upload_slots.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace rdg::ingest {

UploadSlots::Slot::Slot(Slot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), institution_(std::move(other.institution_)) {}

UploadSlots::Slot& UploadSlots::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    institution_ = std::move(other.institution_);
  }
  return *this;
}

void UploadSlots::Slot::Release() {
  if (owner_ != nullptr) std::exchange(owner_, nullptr)->Release(institution_);
}

absl::StatusOr<UploadSlots::Slot> UploadSlots::Acquire(const std::string& institution) {
  absl::MutexLock lock(&mu_);
  if (total_ >= max_total_) {
    return absl::UnavailableError(
        "the gateway is busy: it is handling its maximum number of uploads; retry shortly");
  }
  int& mine = per_institution_[institution];
  if (mine >= max_per_institution_) {
    return absl::UnavailableError(
        absl::StrCat("your institution already has ", mine,
                     " uploads in progress (the limit per institution, "
                     "limits.max_concurrent_uploads_per_institution); retry shortly"));
  }
  ++mine;
  ++total_;
  return Slot(this, institution);
}

void UploadSlots::Release(const std::string& institution) {
  absl::MutexLock lock(&mu_);
  --total_;
  if (auto it = per_institution_.find(institution);
      it != per_institution_.end() && --it->second <= 0) {
    per_institution_.erase(it);
  }
}

int UploadSlots::held() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

int UploadSlots::held_by(const std::string& institution) const {
  absl::MutexLock lock(&mu_);
  auto it = per_institution_.find(institution);
  return it == per_institution_.end() ? 0 : it->second;
}

}  // namespace rdg::ingest
