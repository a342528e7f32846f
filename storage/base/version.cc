#include "storage/base/version.h"

#ifndef RDG_VERSION
#error "RDG_VERSION is defined by storage/CMakeLists.txt from the project's version"
#endif

namespace rdg {

const char* ReleaseVersion() { return RDG_VERSION; }

std::string VersionLine(const std::string& program) { return program + " " + ReleaseVersion(); }

}  // namespace rdg
