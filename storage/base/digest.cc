#include "storage/base/digest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <openssl/evp.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rdg::storage {

std::string HexOf(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * bytes.size(), '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 0xf];
  }
  return out;
}

std::string ToHex(const Digest& digest) { return HexOf(ToRaw(digest)); }

std::string ToRaw(const Digest& digest) {
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

absl::StatusOr<Digest> DigestFromHexOrRaw(absl::string_view text) {
  Digest d{};
  if (text.size() == d.size()) {
    std::memcpy(d.data(), text.data(), d.size());
    return d;
  }
  if (text.size() != 2 * d.size()) {
    return absl::InvalidArgumentError("a SHA-256 digest is 32 bytes (or 64 hex characters)");
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < d.size(); ++i) {
    int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("SHA-256 digest is not valid hex");
    d[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

namespace {

//! SHA-256 fetched from the default provider once: with EVP_sha256() OpenSSL 3 looks the
//! algorithm up again (under a global lock) at every EVP_DigestInit_ex, which showed in profiles
//! of clients hashing many small files on several threads.
const EVP_MD* FetchedSha256() {
  static EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : const_cast<EVP_MD*>(EVP_sha256());
  }();
  return md;
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Impl() { EVP_DigestInit_ex(ctx, FetchedSha256(), nullptr); }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(absl::string_view data) {
  EVP_DigestUpdate(impl_->ctx, data.data(), data.size());
}

Digest Sha256::Finish() {
  Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, d.data(), &len);
  EVP_DigestInit_ex(impl_->ctx, FetchedSha256(), nullptr);
  return d;
}

Digest Sha256::Of(absl::string_view bytes) {
  Sha256 hasher;
  hasher.Update(bytes);
  return hasher.Finish();
}

absl::StatusOr<Digest> Sha256::OfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  Sha256 hasher;
  // Not zero-filled (a vector of 1 MiB was, for every small file).
  constexpr size_t kBuffer = 256 << 10;
  const std::unique_ptr<char[]> buf(new char[kBuffer]);
  for (;;) {
    ssize_t n = ::read(fd, buf.get(), kBuffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("read ", path, ": ", strerror(err)));
    }
    if (n == 0) break;
    hasher.Update(absl::string_view(buf.get(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return hasher.Finish();
}

}  // namespace rdg::storage
