// The release this build belongs to, which every binary prints for --version.
#pragma once

#include <string>

namespace rdg {

//! The project's version from CMakeLists.txt (project(rdg VERSION …)), e.g. "0.2.0".
const char* ReleaseVersion();

//! "<program> <version>", the line --version prints.
std::string VersionLine(const std::string& program);

}  // namespace rdg
