// The dev PKI (deploy/dev-pki.sh) for unit tests that need real certificates. Making one takes
// seconds (a key and certificate per demo user), and CTest runs every case in a process of its
// own; so CTest makes two once per run (the fixture dev_pki in tests/CMakeLists.txt: "pki" and
// "rogue", in the directory RDG_TEST_DEV_PKI names) and each case copies the one it needs — a
// copy, because tests revoke certificates in it. Run by hand, without the variable, the case
// makes its own.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace rdg::testing {

//! Puts the dev PKI `name` ("pki" or "rogue") at `dir`/`name`, its CA's key and database at
//! `dir`/`name`-ca (as dev-pki.sh lays them out). False when it could not.
inline bool MakeDevPki(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  const char* cache = std::getenv("RDG_TEST_DEV_PKI");
  std::error_code ec;
  if (cache != nullptr && fs::exists(fs::path(cache) / name / "ca.pem", ec)) {
    for (const std::string& part : {name, name + "-ca"}) {
      fs::copy(fs::path(cache) / part, fs::path(dir) / part, fs::copy_options::recursive, ec);
      if (ec) return false;
    }
    return true;
  }
  const std::string cmd = "bash " + std::string(RDG_SOURCE_DIR) + "/deploy/dev-pki.sh " + dir +
                          "/" + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace rdg::testing
