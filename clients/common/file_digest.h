// SHA-256 of local files, for upload sessions and for verifying downloads.
#pragma once

#include <optional>
#include <string>

namespace rdg::clients {

//! The 32-byte SHA-256 of a file, or nullopt if it cannot be read.
std::optional<std::string> Sha256OfFile(const std::string& path);

//! The 32-byte SHA-256 of bytes in memory.
std::string Sha256OfBytes(const std::string& bytes);

//! Lower-case hex of raw bytes.
std::string ToHex(const std::string& raw);

}  // namespace rdg::clients
