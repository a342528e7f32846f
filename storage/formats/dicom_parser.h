// DICOM parsing for ingest. DCMTK stays behind this header: callers see plain structs and
// absl::Status errors whose messages a clinic operator can act on (and that carry no PHI).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/formats/patient_identifiers.h"

namespace rdg::formats {

//! What ingest needs from one DICOM object. PHI fields are never logged.
struct DicomSummary {
  // Patient (PHI).
  std::string patient_id;
  std::string patient_name;
  std::string patient_sex;
  std::string patient_birth_date;
  std::string patient_age;        //!< (0010,1010) when well formed ("045Y"), else empty
  std::string patient_id_issuer;  //!< Issuer of Patient ID (0010,0021)
  //! Other Patient IDs (0010,1000) and the items of the Other Patient IDs Sequence (0010,1002)
  //! (at most 16), where clinics put the national ID.
  std::vector<PatientIdentifier> other_patient_ids;
  // Study.
  std::string study_instance_uid;
  std::string accession_number;
  std::string study_date;
  std::string study_time;
  std::string study_description;
  // Series / instance.
  std::string series_instance_uid;
  std::string modality;
  std::string body_part;
  std::string sop_instance_uid;
  std::string sop_class_uid;
  std::string transfer_syntax_uid;
  int32_t instance_number = 0;
  bool has_meta_header = false;  //!< a DICOM Part 10 file (preamble + "DICM" + meta group)
  //! How text that was not as declared was read (see dicom_text.h); empty when all was. No PHI.
  std::string text_notes;
};

struct DicomParseOptions {
  //! Values longer than this are left on disk, not read into memory (bounded memory).
  uint32_t max_value_bytes_in_memory = 4096;
};

//! Loads DCMTK's data dictionary and quietens its logger. Call once at start-up; fails clearly if
//! the dictionary (Debian package dcmtk-data / libdcmtk17's dicom.dic) is missing.
absl::Status InitDicomToolkit();

//! Parses the DICOM object in `path` (Part 10 file, or a bare dataset) and extracts what ingest
//! needs, every text value as valid UTF-8 (converted from the object's Specific Character Set).
//! INVALID_ARGUMENT for anything that is not a complete, identifiable DICOM object.
absl::StatusOr<DicomSummary> ParseDicomFile(const std::string& path,
                                            const DicomParseOptions& options = {});

}  // namespace rdg::formats
