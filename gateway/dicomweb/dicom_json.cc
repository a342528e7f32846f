#include "gateway/dicomweb/dicom_json.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "dcmtk/config/osconfig.h"  // first of DCMTK's headers
#include "dcmtk/dcmdata/dccodec.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcjson.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "nlohmann/json.hpp"
#include "storage/base/status_macros.h"

namespace rdg::dicomweb {
namespace {

using nlohmann::json;

void Put(json& out, const char* tag, const char* vr, const std::string& value) {
  json& e = out[tag];
  e["vr"] = vr;
  if (!value.empty()) e["Value"] = json::array({value});
}

void PutInt(json& out, const char* tag, const char* vr, int64_t value) {
  out[tag] = {{"vr", vr}, {"Value", json::array({value})}};
}

//! A PN as its JSON object: "FAMILY^GIVEN=汉字^名" → Alphabetic, Ideographic, Phonetic.
void PutName(json& out, const char* tag, const std::string& pn) {
  json& e = out[tag];
  e["vr"] = "PN";
  if (pn.empty()) return;
  std::vector<std::string> groups = absl::StrSplit(pn, '=');
  json name = json::object();
  const char* keys[] = {"Alphabetic", "Ideographic", "Phonetic"};
  for (size_t i = 0; i < groups.size() && i < 3; ++i) {
    if (!groups[i].empty()) name[keys[i]] = groups[i];
  }
  e["Value"] = json::array({name});
}

void PutStudy(json& out, const storage::ExamRecord& exam) {
  Put(out, "00080005", "CS", "ISO_IR 192");
  Put(out, "00080020", "DA", exam.study_date);
  Put(out, "00080030", "TM", exam.study_time);
  Put(out, "00080050", "SH", exam.accession_number);
  Put(out, "00081030", "LO", exam.study_description);
  PutName(out, "00100010", exam.patient.name);
  Put(out, "00100020", "LO", exam.patient.patient_id);
  Put(out, "00100021", "LO", exam.patient.id_issuer);
  Put(out, "00100030", "DA", exam.patient.birth_date);
  Put(out, "00100040", "CS", exam.patient.sex);
  Put(out, "0020000D", "UI", exam.study_instance_uid);
}

std::string StudyUrl(absl::string_view base, const storage::ExamRecord& exam) {
  return absl::StrCat(base, "/studies/", exam.study_instance_uid);
}

//! The elements whose values metadata gives as BulkDataURIs, and the only ones served as bulk
//! data: pixel data, encapsulated documents, waveforms, overlays.
bool IsBulkData(const DcmTagKey& tag) {
  return tag == DCM_PixelData || tag == DCM_EncapsulatedDocument || tag == DCM_WaveformData ||
         tag == DCM_FloatPixelData || tag == DCM_DoubleFloatPixelData ||
         ((tag.getGroup() & 0xFF01) == 0x6000 && tag.getElement() == 0x3000);
}

//! Bulk data elements: their values are served at a BulkDataURI, not inline.
class BulkDataFormat final : public DcmJsonFormatCompact {
 public:
  explicit BulkDataFormat(std::string instance_url)
      : DcmJsonFormatCompact(OFFalse), instance_url_(std::move(instance_url)) {}
  OFBool asBulkDataURI(const DcmTagKey& tag, OFString& uri) override {
    if (!IsBulkData(tag)) return OFFalse;
    uri = absl::StrFormat("%s/bulkdata/%04X%04X", instance_url_, tag.getGroup(), tag.getElement())
              .c_str();
    return OFTrue;
  }

 private:
  const std::string instance_url_;
};

}  // namespace

std::vector<SeriesSummary> SeriesOf(const std::vector<storage::ObjectRecord>& objects) {
  std::vector<SeriesSummary> out;
  std::map<std::string, size_t> index;
  for (const storage::ObjectRecord& o : objects) {
    if (o.kind != storage::ObjectKind::kDicom || o.series_instance_uid.empty()) continue;
    auto [it, added] = index.emplace(o.series_instance_uid, out.size());
    if (added) out.push_back({o.series_instance_uid, o.modality, {}});
    out[it->second].instances.push_back(&o);
  }
  return out;
}

std::string StudyJson(const storage::ExamRecord& exam, const std::vector<SeriesSummary>& series,
                      absl::string_view base) {
  json out = json::object();
  PutStudy(out, exam);
  json modalities = json::array();
  size_t instances = 0;
  for (const SeriesSummary& s : series) {
    instances += s.instances.size();
    if (!s.modality.empty() &&
        std::find(modalities.begin(), modalities.end(), s.modality) == modalities.end()) {
      modalities.push_back(s.modality);
    }
  }
  out["00080061"] = {{"vr", "CS"}};
  if (!modalities.empty()) out["00080061"]["Value"] = modalities;
  Put(out, "00081190", "UR", StudyUrl(base, exam));
  PutInt(out, "00201206", "IS", static_cast<int64_t>(series.size()));
  PutInt(out, "00201208", "IS", static_cast<int64_t>(instances));
  return out.dump();
}

std::string SeriesJson(const storage::ExamRecord& exam, const SeriesSummary& series,
                       absl::string_view base) {
  json out = json::object();
  Put(out, "00080005", "CS", "ISO_IR 192");
  Put(out, "00080060", "CS", series.modality);
  Put(out, "0020000D", "UI", exam.study_instance_uid);
  Put(out, "0020000E", "UI", series.series_instance_uid);
  Put(out, "00081190", "UR",
      absl::StrCat(StudyUrl(base, exam), "/series/", series.series_instance_uid));
  PutInt(out, "00201209", "IS", static_cast<int64_t>(series.instances.size()));
  return out.dump();
}

std::string InstanceJson(const storage::ExamRecord& exam, const storage::ObjectRecord& object,
                         absl::string_view base) {
  json out = json::object();
  Put(out, "00080005", "CS", "ISO_IR 192");
  Put(out, "00080016", "UI", object.sop_class_uid);
  Put(out, "00080018", "UI", object.sop_instance_uid);
  Put(out, "00080060", "CS", object.modality);
  Put(out, "00083002", "UI", object.transfer_syntax_uid);
  Put(out, "0020000D", "UI", exam.study_instance_uid);
  Put(out, "0020000E", "UI", object.series_instance_uid);
  PutInt(out, "00200013", "IS", object.instance_number);
  Put(out, "00081190", "UR",
      absl::StrCat(StudyUrl(base, exam), "/series/", object.series_instance_uid, "/instances/",
                   object.sop_instance_uid));
  return out.dump();
}

absl::StatusOr<std::string> InstanceMetadataJson(const std::string& path,
                                                 absl::string_view instance_url) {
  DcmFileFormat file;
  if (OFCondition c = file.loadFile(path.c_str()); c.bad()) {
    return absl::InternalError(absl::StrCat("cannot read a stored instance: ", c.text()));
  }
  // The index stores text as UTF-8 and so does DICOM JSON: convert the data set's own
  // character set (GB18030, …) first.
  (void)file.convertToUTF8();  // unknown character sets stay as they are
  BulkDataFormat format{std::string(instance_url)};
  // DcmDataset::writeJson writes the attributes only: the object's braces are the caller's.
  std::ostringstream out;
  out << "{";
  if (OFCondition c = file.getDataset()->writeJson(out, format); c.bad()) {
    return absl::InternalError(absl::StrCat("cannot write an instance's metadata: ", c.text()));
  }
  out << "}";
  return out.str();
}

struct FrameSource::State {
  DcmFileFormat file;
  DcmElement* pixels = nullptr;
  DcmPixelSequence* fragments = nullptr;  //!< compressed pixel data; item 0: Basic Offset Table
  Sint32 count = 1;
  uint64_t frame_bytes = 0;  //!< native pixel data
  std::string syntax;
};

FrameSource::FrameSource(std::unique_ptr<State> state) : state_(std::move(state)) {}
FrameSource::~FrameSource() = default;

int FrameSource::count() const { return state_->count; }
const std::string& FrameSource::transfer_syntax_uid() const { return state_->syntax; }

absl::StatusOr<std::unique_ptr<FrameSource>> FrameSource::Open(const std::string& path) {
  auto state = std::make_unique<State>();
  // Values above 4 KiB stay in the file until read: a frame is read when it is sent.
  if (OFCondition c = state->file.loadFile(path.c_str()); c.bad()) {
    return absl::InternalError(absl::StrCat("cannot read a stored instance: ", c.text()));
  }
  DcmDataset& ds = *state->file.getDataset();
  Uint16 rows = 0, columns = 0, samples = 1, bits = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, columns);
  ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  ds.findAndGetUint16(DCM_BitsAllocated, bits);
  ds.findAndGetSint32(DCM_NumberOfFrames, state->count);
  state->count = std::max<Sint32>(state->count, 1);
  if (ds.findAndGetElement(DCM_PixelData, state->pixels).bad() || state->pixels == nullptr ||
      rows == 0 || columns == 0 || bits == 0) {
    return absl::NotFoundError("this instance has no pixel data");
  }
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (DcmXfer(xfer).isEncapsulated()) {
    if (state->pixels->ident() != EVR_PixelData ||
        static_cast<DcmPixelData*>(state->pixels)
            ->getEncapsulatedRepresentation(xfer, nullptr, state->fragments)
            .bad() ||
        state->fragments == nullptr) {
      return absl::InternalError("cannot read the compressed pixel data's fragments");
    }
    state->syntax = DcmXfer(xfer).getXferID();
  } else {
    const uint64_t frame_bits = uint64_t{rows} * columns * std::max<Uint16>(samples, 1) * bits;
    state->frame_bytes = (frame_bits + 7) / 8;
    // Native pixel data is the same bytes in either little-endian syntax.
    state->syntax = UID_LittleEndianExplicitTransferSyntax;
  }
  return std::unique_ptr<FrameSource>(new FrameSource(std::move(state)));
}

absl::StatusOr<std::pair<uint32_t, uint32_t>> FrameSource::FragmentsOf(int n) const {
  // Found as PS3.5 A.4 allows: one fragment per frame, the Basic Offset Table, or all fragments
  // of a single frame.
  DcmPixelSequence* fragments = state_->fragments;
  const Uint32 items = static_cast<Uint32>(fragments->card());
  const Sint32 count = state_->count;
  auto start_of = [&](Uint32 frame) -> absl::StatusOr<Uint32> {  // 0-based
    if (frame == static_cast<Uint32>(count)) return items;
    Uint32 item = 0;
    if (OFCondition c = DcmCodec::determineStartFragment(frame, count, fragments, item);
        c.bad() || item < 1 || item > items) {
      return absl::UnimplementedError(absl::StrCat(
          "the fragments of frame ", frame + 1, " cannot be told apart (", items - 1,
          " fragments for ", count, " frames and no offset table): retrieve the instance instead"));
    }
    return item;
  };
  RDG_ASSIGN_OR_RETURN(const Uint32 first, start_of(static_cast<Uint32>(n - 1)));
  RDG_ASSIGN_OR_RETURN(const Uint32 end, start_of(static_cast<Uint32>(n)));
  if (end <= first) return absl::DataLossError("the compressed frame has no fragments");
  return std::make_pair(first, end);
}

absl::Status FrameSource::Locate(int n) const {
  if (n < 1 || n > state_->count) {
    return absl::NotFoundError(
        absl::StrCat("no frame ", n, " (the instance has ", state_->count, ")"));
  }
  if (state_->fragments == nullptr) {
    const uint64_t end = state_->frame_bytes * static_cast<uint64_t>(n);
    if (end > state_->pixels->getLength()) {
      return absl::DataLossError("the pixel data is shorter than its frames");
    }
    return absl::OkStatus();
  }
  return FragmentsOf(n).status();
}

absl::StatusOr<std::string> FrameSource::Read(int n) const {
  RDG_RETURN_IF_ERROR(Locate(n));
  std::string out;
  if (state_->fragments == nullptr) {
    const uint64_t offset = state_->frame_bytes * static_cast<uint64_t>(n - 1);
    out.resize(state_->frame_bytes);
    if (OFCondition c = state_->pixels->getPartialValue(out.data(), static_cast<Uint32>(offset),
                                                        static_cast<Uint32>(state_->frame_bytes));
        c.bad()) {
      return absl::InternalError(absl::StrCat("cannot read frame ", n, ": ", c.text()));
    }
    return out;
  }
  RDG_ASSIGN_OR_RETURN(const auto range, FragmentsOf(n));
  for (Uint32 i = range.first; i < range.second; ++i) {
    DcmPixelItem* item = nullptr;
    if (state_->fragments->getItem(item, i).bad() || item == nullptr) {
      return absl::DataLossError("a fragment of the compressed frame is missing");
    }
    const Uint32 length = item->getLength();
    if (length == 0) continue;
    // Read from the file, not loaded into the item: nothing of a sent frame stays in memory.
    const size_t at = out.size();
    out.resize(at + length);
    if (OFCondition c = item->getPartialValue(out.data() + at, 0, length); c.bad()) {
      return absl::InternalError(absl::StrCat("cannot read frame ", n, ": ", c.text()));
    }
  }
  return out;
}

struct BulkValue::State {
  DcmFileFormat file;
  DcmElement* element = nullptr;
};

BulkValue::BulkValue(std::unique_ptr<State> state) : state_(std::move(state)) {}
BulkValue::~BulkValue() = default;

uint32_t BulkValue::size() const { return state_->element->getLength(); }

absl::StatusOr<std::unique_ptr<BulkValue>> BulkValue::Open(const std::string& path, uint16_t group,
                                                           uint16_t element) {
  const DcmTagKey tag(group, element);
  if (!IsBulkData(tag)) {
    return absl::NotFoundError(absl::StrFormat(
        "(%04X,%04X) is not served as bulk data (it is in the metadata)", group, element));
  }
  auto state = std::make_unique<State>();
  if (OFCondition c = state->file.loadFile(path.c_str()); c.bad()) {
    return absl::InternalError(absl::StrCat("cannot read a stored instance: ", c.text()));
  }
  DcmDataset& ds = *state->file.getDataset();
  if (ds.findAndGetElement(tag, state->element).bad() || state->element == nullptr) {
    return absl::NotFoundError(absl::StrFormat("no (%04X,%04X) in this instance", group, element));
  }
  if (tag == DCM_PixelData && DcmXfer(ds.getOriginalXfer()).isEncapsulated()) {
    return absl::UnimplementedError(
        "compressed pixel data is served as frames (…/frames/1) or with the instance");
  }
  return std::unique_ptr<BulkValue>(new BulkValue(std::move(state)));
}

absl::Status BulkValue::ReadAt(uint32_t offset, char* out, uint32_t n) const {
  if (uint64_t{offset} + n > size()) return absl::OutOfRangeError("past the value's end");
  if (n == 0) return absl::OkStatus();
  // From the file when the value was left there (above 4 KiB), in this host's (little-endian)
  // byte order, as the data set's own for the little-endian syntaxes RDG receives.
  if (OFCondition c = state_->element->getPartialValue(out, offset, n); c.bad()) {
    return absl::InternalError(absl::StrCat("cannot read the element's value: ", c.text()));
  }
  return absl::OkStatus();
}

}  // namespace rdg::dicomweb
