// libFuzzer entry point for everything a DICOM upload goes through in a parser process: the
// structural walk (formats/dicom_structure), DCMTK's parse and the ingest summary
// (parsing::InProcessParser, ECG decoding included), then the answer's round trip through the
// parser protocol (parsing/parse_wire) as the gateway reads it. Seeds: tests/fuzz/corpus/dicom/.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "storage/formats/dicom_parser.h"
#include "storage/parsing/object_parser.h"
#include "storage/parsing/parse_wire.h"
#include "tests/fuzz/dcmtk_fuzz_support.h"

namespace {
const rdg::formats::DicomStructureLimits kLimits{64, 500000};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rdg::fuzz::InitDcmtkOnce();
  static const int fd = memfd_create("dicom-fuzz", 0);
  if (fd < 0) std::abort();
  // The parser reads a file, as in the gateway: the input becomes the memfd's whole content.
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    std::abort();
  static const rdg::parsing::InProcessParser parser(rdg::parsing::CriticalValueTable(), kLimits);
  const rdg::parsing::ParseJob job{rdg::v1::DICOM, "/proc/self/fd/" + std::to_string(fd),
                                   static_cast<int64_t>(size), absl::UnixEpoch(), "RDG1"};
  const absl::StatusOr<rdg::parsing::ParsedObject> parsed = parser.Parse(job);
  if (!parsed.ok() && parsed.status().message().empty()) std::abort();  // refusals say why
  // What the gateway receives must read back whatever the object's text held.
  const rdg::v1::ParseResponse response = rdg::parsing::ToResponse(parsed);
  rdg::v1::ParseResponse read_back;
  if (!read_back.ParseFromString(response.SerializeAsString())) std::abort();
  const auto again = rdg::parsing::FromResponse(read_back);
  if (again.ok() != parsed.ok()) std::abort();
  if (parsed.ok() && again->object.sop_instance_uid != parsed->object.sop_instance_uid)
    std::abort();
  return 0;
}
