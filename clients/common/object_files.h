// Writes a server stream of ObjectChunk (exam download, reader fetch) to DIR/<SOP UID>.dcm (HL7
// lab messages: DIR/<object id>.hl7), each file verified against its SHA-256 before it is renamed
// into place.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <string>
#include <vector>

#include "rdg/v1/common.pb.h"

namespace rdg::clients {

struct WrittenObject {
  std::string path;
  std::string sop_instance_uid;
  int64_t size = 0;
  rdg::v1::StoredObject object;  //!< what the gateway said of it (kind, SOP class, ...)
};

struct StreamResult {
  grpc::Status status;  //!< the call's status, or DATA_LOSS for a damaged file
  std::vector<WrittenObject> files;
  int64_t bytes = 0;
  std::vector<std::string> rendered;  //!< pictures made from the objects (ECG tracings)
};

StreamResult WriteObjectStream(grpc::ClientReaderInterface<rdg::v1::ObjectChunk>& reader,
                               const std::string& out_dir);

//! Prints what was written: JSON (exam id, files, bytes) or one line "<verb> N objects … to DIR".
void PrintStreamResult(const StreamResult& result, const std::string& exam_id,
                       const std::string& out_dir, const std::string& verb, bool as_json);

}  // namespace rdg::clients
