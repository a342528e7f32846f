#include "storage/formats/dicom_parser.h"

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/oflog/oflog.h>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/formats/dcmtk_values.h"
#include "storage/formats/dicom_text.h"
#include "storage/formats/text.h"

namespace rdg::formats {
namespace {

//! Other Patient IDs Sequence items read at most (a patient has a handful of identifiers).
constexpr unsigned long kMaxOtherPatientIds = 16;

//! A DICOM UID: 1..64 characters of digits and dots, no empty components.
bool IsValidUid(absl::string_view uid) {
  if (uid.empty() || uid.size() > 64 || uid.front() == '.' || uid.back() == '.') return false;
  char prev = 0;
  for (char c : uid) {
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
    if (c == '.' && prev == '.') return false;
    prev = c;
  }
  return true;
}

absl::Status RequireUid(const std::string& value, absl::string_view name, absl::string_view tag) {
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the file has no ", name, " ", tag,
                     "; it cannot be filed into an exam. Re-export it from the modality"));
  }
  if (!IsValidUid(value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the file's ", name, " ", tag, " is not a valid DICOM UID (digits and dots, at most 64)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InitDicomToolkit() {
  // DCMTK reports parse problems through oflog; the gateway reports them itself.
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  if (!dcmDataDict.isDictionaryLoaded()) {
    return absl::FailedPreconditionError(
        "DCMTK's data dictionary is not loaded: install Debian's libdcmtk17 (dicom.dic) or set "
        "DCMDICTPATH");
  }
  return absl::OkStatus();
}

absl::StatusOr<DicomSummary> ParseDicomFile(const std::string& path,
                                            const DicomParseOptions& options) {
  DcmFileFormat file;
  OFCondition cond = file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange,
                                   options.max_value_bytes_in_memory, ERM_autoDetect);
  if (cond.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a readable DICOM file (", cond.text(),
                     "); check that the file is complete and was exported as DICOM"));
  }
  DcmDataset* ds = file.getDataset();
  DcmMetaInfo* meta = file.getMetaInfo();
  if (ds == nullptr || ds->card() == 0) {
    return absl::InvalidArgumentError("not a DICOM file: it contains no DICOM data elements");
  }

  DicomSummary s;
  s.has_meta_header = meta != nullptr && meta->card() > 0;
  s.sop_instance_uid = TrimmedString(*ds, DCM_SOPInstanceUID);
  s.sop_class_uid = TrimmedString(*ds, DCM_SOPClassUID);
  s.study_instance_uid = TrimmedString(*ds, DCM_StudyInstanceUID);
  s.series_instance_uid = TrimmedString(*ds, DCM_SeriesInstanceUID);
  if (auto st = RequireUid(s.sop_instance_uid, "SOP Instance UID", "(0008,0018)"); !st.ok())
    return st;
  if (auto st = RequireUid(s.study_instance_uid, "Study Instance UID", "(0020,000D)"); !st.ok())
    return st;
  if (auto st = RequireUid(s.series_instance_uid, "Series Instance UID", "(0020,000E)"); !st.ok())
    return st;
  if (s.sop_class_uid == UID_MediaStorageDirectoryStorage) {
    return absl::InvalidArgumentError("a DICOMDIR is a media index, not an exam object");
  }

  if (s.has_meta_header) s.transfer_syntax_uid = TrimmedString(*meta, DCM_TransferSyntaxUID);
  if (s.transfer_syntax_uid.empty()) {
    // Bare dataset (no meta header): report the syntax DCMTK detected while reading.
    s.transfer_syntax_uid = DcmXfer(ds->getOriginalXfer()).getXferID();
  }
  DicomTextDecoder text(TrimmedString(*ds, DCM_SpecificCharacterSet));
  auto read = [&](const DcmTagKey& tag, absl::string_view delimiters) {
    return text.Decode(TrimmedString(*ds, tag), delimiters);
  };
  s.patient_id = read(DCM_PatientID, kStringDelimiters);
  s.patient_name = read(DCM_PatientName, kPersonNameDelimiters);
  s.patient_sex = read(DCM_PatientSex, kStringDelimiters);
  s.patient_birth_date = read(DCM_PatientBirthDate, kStringDelimiters);
  s.patient_age = read(DCM_PatientAge, kStringDelimiters);
  // "000Y" (also 000M, 000W) is what devices write for "unknown": a baby is aged in days.
  if (!IsDicomAge(s.patient_age) ||
      (absl::StartsWith(s.patient_age, "000") && s.patient_age != "000D")) {
    s.patient_age.clear();
  }
  s.patient_id_issuer = read(DCM_IssuerOfPatientID, kStringDelimiters);
  for (absl::string_view id : absl::StrSplit(read(DCM_RETIRED_OtherPatientIDs, kStringDelimiters),
                                             '\\', absl::SkipWhitespace())) {
    s.other_patient_ids.push_back({std::string(id), "", "", "(0010,1000)"});
  }
  DcmItem* item = nullptr;
  for (unsigned long i = 0;
       i < kMaxOtherPatientIds &&
       ds->findAndGetSequenceItem(DCM_OtherPatientIDsSequence, item, static_cast<int>(i)).good();
       ++i) {
    std::string id = text.Decode(TrimmedString(*item, DCM_PatientID), kStringDelimiters);
    if (id.empty()) continue;
    s.other_patient_ids.push_back(
        {std::move(id), text.Decode(TrimmedString(*item, DCM_IssuerOfPatientID), kStringDelimiters),
         text.Decode(TrimmedString(*item, DCM_TypeOfPatientID), kStringDelimiters),
         absl::StrCat("(0010,1002) item ", i + 1)});
  }
  s.accession_number = read(DCM_AccessionNumber, kStringDelimiters);
  s.study_date = read(DCM_StudyDate, kStringDelimiters);
  s.study_time = read(DCM_StudyTime, kStringDelimiters);
  s.study_description = read(DCM_StudyDescription, kStringDelimiters);
  s.modality = read(DCM_Modality, kStringDelimiters);
  s.body_part = read(DCM_BodyPartExamined, kStringDelimiters);
  s.text_notes = text.Notes();
  Sint32 number = 0;
  if (ds->findAndGetSint32(DCM_InstanceNumber, number).good()) s.instance_number = number;
  return s;
}

}  // namespace rdg::formats
