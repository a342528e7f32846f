// Identifiers and secrets from OpenSSL's CSPRNG (RAND_bytes): exam, report and upload-session ids
// must not be guessable from one another, and tokens must not be guessable at all.
#pragma once

#include <cstddef>
#include <string>

namespace rdg::storage {

//! `bytes` random bytes from RAND_bytes as 2 × `bytes` lowercase hex digits. RAND_bytes fails only
//! when the system cannot seed it, a state in which nothing safe can be done: the process aborts.
std::string RandomHex(size_t bytes);

}  // namespace rdg::storage
