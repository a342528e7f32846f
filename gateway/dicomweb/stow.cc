#include "gateway/dicomweb/stow.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "gateway/dicomweb/multipart_reader.h"
#include "nlohmann/json.hpp"
#include "storage/base/random.h"

namespace rdg::dicomweb {
namespace {

// Failure Reasons (PS3.4 Annex B, PS3.18 10.5.3).
constexpr uint16_t kProcessingFailure = 0x0110;
constexpr uint16_t kOutOfResources = 0xA700;
constexpr uint16_t kDataSetDoesNotMatch = 0xA900;
constexpr uint16_t kCannotUnderstand = 0xC000;
constexpr size_t kAppendChunk = 1 << 20;

uint16_t ReasonOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kCannotUnderstand;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return kDataSetDoesNotMatch;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return kOutOfResources;
    default:
      return kProcessingFailure;
  }
}

}  // namespace

StowRequest::StowRequest(ingest::Ingestor& ingestor, storage::ExamStore& exams,
                         const auth::Principal& who, std::string staging_dir,
                         int64_t max_object_bytes, std::string study)
    : ingestor_(ingestor),
      exams_(exams),
      who_(who),
      staging_dir_(std::move(staging_dir)),
      max_object_bytes_(max_object_bytes),
      study_(std::move(study)) {}

StowRequest::~StowRequest() { Discard(); }

void StowRequest::Discard() {
  if (!path_.empty()) ::unlink(path_.c_str());
  file_ = storage::File();
  path_.clear();
}

void StowRequest::Fail(uint16_t reason, std::string detail) {
  Outcome o;
  o.failure_reason = reason;
  o.detail = std::move(detail);
  outcomes_.push_back(std::move(o));
  skipping_ = true;
  Discard();
}

bool StowRequest::Begin(const std::map<std::string, std::string>& headers) {
  skipping_ = false;
  size_ = 0;
  sha_ = storage::Sha256();
  auto type = headers.find("content-type");
  if (type == headers.end() || MediaTypeOf(type->second) != "application/dicom") {
    Fail(kCannotUnderstand, "a part that is not application/dicom");
    return true;  // the other parts are still read
  }
  // Named as a staged upload, and locked as one being written: the ingestor's start-up recovery
  // removes it if this gateway dies meanwhile, and leaves it while it lives.
  path_ = absl::StrCat(staging_dir_, "/stow-", storage::RandomHex(12), ".part");
  auto file = storage::File::OpenForAppend(path_, /*create=*/true);
  absl::Status locked = file.ok() ? file->TryLock() : file.status();
  if (!locked.ok()) {
    if (file.ok()) file_ = *std::move(file);
    Fail(kOutOfResources, absl::StrCat("cannot stage the instance: ", locked.message()));
    outcomes_.back().retry_later = true;
    return true;
  }
  file_ = *std::move(file);
  return true;
}

bool StowRequest::Write(absl::string_view data) {
  if (skipping_) return true;
  size_ += static_cast<int64_t>(data.size());
  if (size_ > max_object_bytes_) {
    Fail(kOutOfResources,
         absl::StrCat("an instance larger than limits.max_object_bytes (", max_object_bytes_, ")"));
    return true;
  }
  sha_.Update(data);
  if (absl::Status s = file_.Append(data); !s.ok()) {
    Fail(kOutOfResources, absl::StrCat("cannot stage the instance: ", s.message()));
    outcomes_.back().retry_later = true;  // the data dir's disk: not the instance's fault
  }
  return true;
}

bool StowRequest::End() {
  if (skipping_) return true;
  outcomes_.push_back(Store());
  Discard();
  return true;
}

StowRequest::Outcome StowRequest::Store() {
  Outcome o;
  auto failed = [&o](const absl::Status& s) {
    o.failure_reason = ReasonOf(s);
    o.retry_later = absl::IsUnavailable(s);
    o.detail = std::string(s.message());
    return o;
  };
  if (size_ == 0) return failed(absl::InvalidArgumentError("an empty part"));
  rdg::v1::UploadRequest first;
  rdg::v1::OpenUploadRequest* open = first.mutable_open();
  open->set_kind(rdg::v1::DICOM);
  open->set_size(size_);
  open->set_sha256(storage::ToRaw(sha_.Finish()));
  open->set_priority(rdg::v1::ROUTINE);
  open->set_client_ref("STOW-RS");
  auto attached = ingestor_.Attach(who_, first);
  if (!attached.ok()) return failed(attached.status());
  absl::StatusOr<rdg::v1::UploadStatus> status;
  if (attached->already_stored) {
    status = *attached->already_stored;
    if (const std::string& stored_in = status->committed().study_instance_uid();
        !study_.empty() && stored_in != study_) {
      return failed(absl::FailedPreconditionError(
          absl::StrCat("the instance is stored already, in study ", stored_in, ", not in study ",
                       study_, " that the request named")));
    }
  } else {
    auto staged = storage::File::OpenForRead(path_);
    if (!staged.ok()) {
      attached->handle->Abandon();
      return failed(staged.status());
    }
    std::string chunk(kAppendChunk, '\0');
    for (int64_t offset = 0; offset < size_;) {
      absl::StatusOr<size_t> n = staged->ReadAt(offset, chunk.data(), chunk.size());
      absl::Status s = !n.ok() ? n.status()
                       : *n == 0
                           ? absl::DataLossError("the staged instance is shorter than received")
                           : attached->handle->Append(offset, absl::string_view(chunk.data(), *n));
      if (!s.ok()) {
        attached->handle->Abandon();
        return failed(s);
      }
      offset += static_cast<int64_t>(*n);
    }
    status = attached->handle->Commit(study_);
  }
  if (!status.ok()) return failed(status.status());
  const rdg::v1::CommittedObject& c = status->committed();
  o.stored = true;
  o.duplicate = c.duplicate() || attached->already_stored.has_value();
  o.sop_instance_uid = c.sop_instance_uid();
  o.study_instance_uid = c.study_instance_uid();
  if (auto found = exams_.FindObject(who_.institution, c.sop_instance_uid());
      found.ok() && found->has_value()) {
    o.sop_class_uid = (*found)->sop_class_uid;
    o.series_instance_uid = (*found)->series_instance_uid;
  }
  return o;
}

int StowRequest::HttpStatus() const {
  size_t stored = 0, for_now = 0;
  for (const Outcome& o : outcomes_) {
    stored += o.stored ? 1 : 0;
    for_now += !o.stored && o.retry_later ? 1 : 0;
  }
  if (stored == outcomes_.size() && stored > 0) return 200;
  if (stored > 0) return 202;
  // Nothing stored, and only for want of resources now (a full disk, a busy index): the
  // client should send it again shortly, not give up.
  return for_now > 0 && for_now == outcomes_.size() ? 503 : 409;
}

std::string StowRequest::ResponseJson(absl::string_view base) const {
  using nlohmann::json;
  json referenced = json::array(), failed = json::array();
  std::string study;
  for (const Outcome& o : outcomes_) {
    json item = json::object();
    if (!o.sop_class_uid.empty()) item["00081150"] = {{"vr", "UI"}, {"Value", {o.sop_class_uid}}};
    if (!o.sop_instance_uid.empty()) {
      item["00081155"] = {{"vr", "UI"}, {"Value", {o.sop_instance_uid}}};
    }
    if (o.stored) {
      study = o.study_instance_uid;
      // The instance's WADO-RS URL (its study's when the series could not be looked up).
      item["00081190"] = {
          {"vr", "UR"},
          {"Value",
           {o.series_instance_uid.empty()
                ? absl::StrCat(base, "/studies/", o.study_instance_uid)
                : absl::StrCat(base, "/studies/", o.study_instance_uid, "/series/",
                               o.series_instance_uid, "/instances/", o.sop_instance_uid)}}};
      if (o.duplicate) {
        // Stored before, byte for byte: a success (PS3.4 has no warning reason for it; B007
        // would say the data set does not match its SOP class). Said in words.
        item["00090010"] = {{"vr", "LO"}, {"Value", {"RDG"}}};
        item["00091001"] = {{"vr", "LT"}, {"Value", {"already stored (the same bytes)"}}};
      }
      referenced.push_back(std::move(item));
    } else {
      item["00081197"] = {{"vr", "US"}, {"Value", {o.failure_reason}}};
      item["00090010"] = {{"vr", "LO"}, {"Value", {"RDG"}}};     // private creator
      item["00091001"] = {{"vr", "LT"}, {"Value", {o.detail}}};  // why, in words
      failed.push_back(std::move(item));
    }
  }
  json out = json::object();
  if (!study.empty()) {
    out["00081190"] = {{"vr", "UR"}, {"Value", {absl::StrCat(base, "/studies/", study)}}};
  }
  if (!referenced.empty()) out["00081199"] = {{"vr", "SQ"}, {"Value", referenced}};
  if (!failed.empty()) out["00081198"] = {{"vr", "SQ"}, {"Value", failed}};
  return out.dump();
}

}  // namespace rdg::dicomweb
