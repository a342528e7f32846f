#include "storage/base/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "storage/base/digest.h"

namespace rdg::storage {

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> random(bytes);
  if (bytes > 0 && RAND_bytes(random.data(), static_cast<int>(bytes)) != 1) {
    std::fputs("rdg: OpenSSL's random generator failed (RAND_bytes); cannot make an id\n", stderr);
    std::abort();
  }
  return HexOf(absl::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
}

}  // namespace rdg::storage
