// SHA-256 digests: the content address of every stored object.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace rdg::storage {

//! A SHA-256 digest (32 raw bytes).
using Digest = std::array<uint8_t, 32>;

//! Lower-case hex of a digest (64 characters): the blob's file name.
std::string ToHex(const Digest& digest);
//! Lower-case hex of any bytes (a raw digest from a protobuf `bytes` field, for messages).
std::string HexOf(absl::string_view bytes);
//! Parses 64 hex characters or 32 raw bytes.
absl::StatusOr<Digest> DigestFromHexOrRaw(absl::string_view text);
//! The digest as a raw 32-byte string (for protobuf `bytes` fields).
std::string ToRaw(const Digest& digest);

//! Incremental SHA-256 (OpenSSL EVP behind a PImpl; OpenSSL types do not leak).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(absl::string_view data);
  //! Returns the digest of everything so far; the hasher is reset afterwards.
  Digest Finish();

  //! Digest of a whole file, read in bounded chunks.
  static absl::StatusOr<Digest> OfFile(const std::string& path);
  //! Digest of bytes in memory.
  static Digest Of(absl::string_view bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdg::storage
