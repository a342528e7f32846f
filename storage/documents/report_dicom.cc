#include "storage/documents/report_dicom.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "storage/base/digest.h"

namespace rdg::documents {
namespace {

constexpr char kManufacturer[] = "RDG Remote Diagnosis Gateway";
constexpr char kPrivateScheme[] = "99RDG";  // the platform's own codes (user ids)

// Codes of the report's headings: the document title and the section headings of PS3.16
// CID 7000/7001 (Diagnostic Imaging Report Document Titles / Headings).
const DSRCodedEntryValue& DocumentTitle() {
  static const DSRCodedEntryValue code("18748-4", "LN", "Diagnostic Imaging Report");
  return code;
}
DSRCodedEntryValue FindingsHeading() { return {"59776-5", "LN", "Procedure Findings"}; }
DSRCodedEntryValue ImpressionHeading() { return {"19005-8", "LN", "Impressions"}; }
DSRCodedEntryValue AddendumHeading() { return {"55107-7", "LN", "Addendum"}; }
DSRCodedEntryValue CriticalHeading() {
  return {"CRITICAL", kPrivateScheme, "Critical result communicated"};
}

absl::Status Check(const OFCondition& c, absl::string_view what) {
  if (c.good()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("report document: ", what, ": ", c.text()));
}

// Returns from the function with INVALID_ARGUMENT naming `what` when a DCMTK call failed.
#define RDG_DCMTK_RETURN_IF_ERROR(expr, what)                \
  do {                                                       \
    if (absl::Status s_ = Check((expr), (what)); !s_.ok()) { \
      return s_;                                             \
    }                                                        \
  } while (false)

std::string Da(absl::Time t, absl::TimeZone zone) { return absl::FormatTime("%Y%m%d", t, zone); }
std::string Tm(absl::Time t, absl::TimeZone zone) { return absl::FormatTime("%H%M%S", t, zone); }
//! "+0800": the zone's offset at `t` (TimezoneOffsetFromUTC, and the suffix of a DT).
std::string Offset(absl::Time t, absl::TimeZone zone) { return absl::FormatTime("%z", t, zone); }

absl::Status Validate(const ReportDocumentInput& r) {
  if (r.study_instance_uid.empty() || r.study_instance_uid.size() > 64) {
    return absl::InvalidArgumentError("report document: the study has no valid Study Instance UID");
  }
  if (r.document_key.empty()) return absl::InvalidArgumentError("report document: no key");
  if (r.impression.empty()) {
    return absl::InvalidArgumentError("report document: the report has no impression");
  }
  if (r.observer_name.empty() || r.observer_user.empty() || r.observer_organization.empty()) {
    return absl::InvalidArgumentError("report document: no verifying observer");
  }
  return absl::OkStatus();
}

//! The data set as DICOM Part 10 bytes (preamble, meta header, Explicit VR Little Endian).
absl::StatusOr<std::string> Part10(DcmFileFormat& file) {
  std::string out;
  char buffer[64 * 1024];
  DcmOutputBufferStream stream(buffer, sizeof(buffer));
  file.transferInit();
  OFCondition c = EC_StreamNotifyClient;
  while (c == EC_StreamNotifyClient) {
    c = file.write(stream, EXS_LittleEndianExplicit, EET_ExplicitLength, nullptr);
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    out.append(static_cast<const char*>(data), static_cast<size_t>(length));
  }
  file.transferEnd();
  if (c.bad()) return absl::InternalError(absl::StrCat("report document: ", c.text()));
  return out;
}

//! Values DCMTK sets from the wall clock or at random, made those of the report version.
absl::Status SetInstance(DcmDataset& ds, const std::string& series_uid,
                         const std::string& instance_uid, const ReportDocumentInput& r) {
  RDG_DCMTK_RETURN_IF_ERROR(ds.putAndInsertString(DCM_SeriesInstanceUID, series_uid.c_str()),
                            "Series Instance UID");
  RDG_DCMTK_RETURN_IF_ERROR(ds.putAndInsertString(DCM_SOPInstanceUID, instance_uid.c_str()),
                            "SOP Instance UID");
  const std::string date = Da(r.signed_at, r.zone), time = Tm(r.signed_at, r.zone);
  RDG_DCMTK_RETURN_IF_ERROR(ds.putAndInsertString(DCM_InstanceCreationDate, date.c_str()),
                            "Instance Creation Date");
  RDG_DCMTK_RETURN_IF_ERROR(ds.putAndInsertString(DCM_InstanceCreationTime, time.c_str()),
                            "Instance Creation Time");
  return absl::OkStatus();
}

}  // namespace

std::string DerivedUid(std::initializer_list<absl::string_view> parts) {
  const storage::Digest d = storage::Sha256::Of(absl::StrJoin(parts, std::string(1, '\0')));
  unsigned __int128 n = 0;
  for (int i = 0; i < 16; ++i) n = (n << 8) | d[i];
  std::string digits;
  do {
    digits.push_back(static_cast<char>('0' + static_cast<int>(n % 10)));
    n /= 10;
  } while (n != 0);
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;  // at most 5 + 39 characters
}

ReportDocumentUids UidsOf(absl::string_view study_instance_uid, absl::string_view document_key) {
  return {DerivedUid({"rdg-report-sr-series", study_instance_uid}),
          DerivedUid({"rdg-report-sr", study_instance_uid, document_key}),
          DerivedUid({"rdg-report-pdf-series", study_instance_uid}),
          DerivedUid({"rdg-report-pdf", study_instance_uid, document_key})};
}

absl::StatusOr<std::string> BuildReportSr(const ReportDocumentInput& r) {
  if (auto valid = Validate(r); !valid.ok()) return valid;
  const ReportDocumentUids uids = UidsOf(r.study_instance_uid, r.document_key);
  DSRDocument doc(DSRTypes::DT_BasicTextSR);
  RDG_DCMTK_RETURN_IF_ERROR(doc.setSpecificCharacterSetType(DSRTypes::CS_UTF8), "character set");
  RDG_DCMTK_RETURN_IF_ERROR(doc.createNewSeriesInStudy(r.study_instance_uid.c_str()),
                            "Study Instance UID");
  // Patient and study, as the study has them: copied unchecked, as for the PDF (a modality's
  // over-long description or odd date must not keep the report out of the PACS).
  constexpr OFBool kCopied = OFFalse;
  RDG_DCMTK_RETURN_IF_ERROR(doc.setPatientName(r.patient_name.c_str(), kCopied), "Patient's Name");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setPatientID(r.patient_id.c_str(), kCopied), "Patient ID");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setIssuerOfPatientID(r.issuer_of_patient_id.c_str(), kCopied),
                            "Issuer of Patient ID");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setPatientBirthDate(r.patient_birth_date.c_str(), kCopied),
                            "Patient's Birth Date");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setPatientSex(r.patient_sex.c_str(), kCopied), "Patient's Sex");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setStudyDate(r.study_date.c_str(), kCopied), "Study Date");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setStudyTime(r.study_time.c_str(), kCopied), "Study Time");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setAccessionNumber(r.accession_number.c_str(), kCopied),
                            "Accession Number");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setStudyDescription(r.study_description.c_str(), kCopied),
                            "Study Description");
  // The document.
  RDG_DCMTK_RETURN_IF_ERROR(doc.setManufacturer(kManufacturer), "Manufacturer");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setSoftwareVersions(r.software_version.c_str()),
                            "Software Versions");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setSeriesDescription("Diagnostic report"), "Series Description");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setContentDate(Da(r.signed_at, r.zone).c_str()), "Content Date");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setContentTime(Tm(r.signed_at, r.zone).c_str()), "Content Time");
  RDG_DCMTK_RETURN_IF_ERROR(doc.setTimezoneOffsetFromUTC(Offset(r.signed_at, r.zone).c_str()),
                            "Timezone Offset From UTC");

  DSRDocumentTree& tree = doc.getTree();
  RDG_DCMTK_RETURN_IF_ERROR(
      tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container, DocumentTitle()),
      "document title");
  bool first = true;  // the first heading is the root's child, the others its siblings
  auto add_text = [&](const DSRCodedEntryValue& heading, const std::string& text) -> absl::Status {
    if (text.empty()) return absl::OkStatus();  // a TEXT item must have a value
    const OFCondition added =
        first ? tree.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, heading)
              : tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, heading);
    RDG_DCMTK_RETURN_IF_ERROR(added, heading.getCodeMeaning().c_str());
    first = false;
    RDG_DCMTK_RETURN_IF_ERROR(tree.getCurrentContentItem().setStringValue(text.c_str()),
                              heading.getCodeMeaning().c_str());
    return absl::OkStatus();
  };
  for (const auto& [heading, text] :
       {std::pair{FindingsHeading(), r.findings}, std::pair{ImpressionHeading(), r.impression},
        std::pair{AddendumHeading(), r.amendment_reason},
        std::pair{CriticalHeading(), std::string(r.critical ? "YES" : "")}}) {
    if (auto added = add_text(heading, text); !added.ok()) return added;
  }

  for (const auto& e : r.evidence) {
    RDG_DCMTK_RETURN_IF_ERROR(doc.getCurrentRequestedProcedureEvidence().addItem(
                                  r.study_instance_uid.c_str(), e.series_instance_uid.c_str(),
                                  e.sop_class_uid.c_str(), e.sop_instance_uid.c_str()),
                              "evidence");
  }
  if (!r.predecessor_key.empty()) {
    const ReportDocumentUids before = UidsOf(r.study_instance_uid, r.predecessor_key);
    RDG_DCMTK_RETURN_IF_ERROR(
        doc.getPredecessorDocuments().addItem(
            r.study_instance_uid.c_str(), before.sr_series_instance_uid.c_str(),
            UID_BasicTextSRStorage, before.sr_sop_instance_uid.c_str()),
        "predecessor document");
  }
  RDG_DCMTK_RETURN_IF_ERROR(doc.setPreliminaryFlag(DSRTypes::PF_Final), "Preliminary Flag");
  RDG_DCMTK_RETURN_IF_ERROR(doc.completeDocument(), "completion");
  const std::string verified_at =
      absl::StrCat(Da(r.signed_at, r.zone), Tm(r.signed_at, r.zone), Offset(r.signed_at, r.zone));
  RDG_DCMTK_RETURN_IF_ERROR(
      doc.verifyDocument(
          r.observer_name.c_str(),
          DSRCodedEntryValue(r.observer_user.c_str(), kPrivateScheme, r.observer_name.c_str(),
                             DSRTypes::CVT_auto, OFExplicitBool(OFFalse)),  // meaning: any length
          r.observer_organization.c_str(), verified_at.c_str()),
      "verifying observer");

  DcmFileFormat file;
  RDG_DCMTK_RETURN_IF_ERROR(doc.write(*file.getDataset()), "the SR");
  if (auto set =
          SetInstance(*file.getDataset(), uids.sr_series_instance_uid, uids.sr_sop_instance_uid, r);
      !set.ok()) {
    return set;
  }
  return Part10(file);
}

absl::StatusOr<std::string> BuildReportPdf(const ReportDocumentInput& r, absl::string_view pdf) {
  if (auto valid = Validate(r); !valid.ok()) return valid;
  if (pdf.substr(0, 5) != "%PDF-") {
    return absl::InvalidArgumentError("report document: the printable report is not a PDF");
  }
  if (pdf.size() > 0xFFFFFFF0u) {
    return absl::InvalidArgumentError("report document: the PDF is too large for DICOM");
  }
  const ReportDocumentUids uids = UidsOf(r.study_instance_uid, r.document_key);
  const std::string date = Da(r.signed_at, r.zone), time = Tm(r.signed_at, r.zone);
  const std::string title =
      r.critical ? "Diagnostic report (critical result)" : "Diagnostic report";
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  const std::pair<DcmTagKey, std::string> values[] = {
      {DCM_SpecificCharacterSet, "ISO_IR 192"},
      {DCM_SOPClassUID, UID_EncapsulatedPDFStorage},
      {DCM_TimezoneOffsetFromUTC, Offset(r.signed_at, r.zone)},
      // Patient and study.
      {DCM_PatientName, r.patient_name},
      {DCM_PatientID, r.patient_id},
      {DCM_IssuerOfPatientID, r.issuer_of_patient_id},
      {DCM_PatientBirthDate, r.patient_birth_date},
      {DCM_PatientSex, r.patient_sex},
      {DCM_StudyInstanceUID, r.study_instance_uid},
      {DCM_StudyDate, r.study_date},
      {DCM_StudyTime, r.study_time},
      {DCM_ReferringPhysicianName, ""},
      {DCM_StudyID, ""},
      {DCM_AccessionNumber, r.accession_number},
      {DCM_StudyDescription, r.study_description},
      // Encapsulated Document Series, equipment.
      {DCM_Modality, "DOC"},
      {DCM_SeriesNumber, "2"},  // the SR series is 1
      {DCM_SeriesDescription, "Printable report"},
      {DCM_Manufacturer, kManufacturer},
      {DCM_SoftwareVersions, r.software_version},
      {DCM_ConversionType, "WSD"},  // workstation
      // Encapsulated Document.
      {DCM_InstanceNumber, "1"},
      {DCM_ContentDate, date},
      {DCM_ContentTime, time},
      {DCM_AcquisitionDateTime, ""},
      {DCM_BurnedInAnnotation, "YES"},  // the patient's name and ids are printed
      {DCM_DocumentTitle, title},
      {DCM_MIMETypeOfEncapsulatedDocument, "application/pdf"},
  };
  for (const auto& [tag, value] : values) {
    RDG_DCMTK_RETURN_IF_ERROR(ds.putAndInsertString(tag, value.c_str()), DcmTag(tag).getTagName());
  }
  RDG_DCMTK_RETURN_IF_ERROR(DocumentTitle().writeSequence(ds, DCM_ConceptNameCodeSequence),
                            "Concept Name Code Sequence");
  // OB of even length: a PDF of odd length gets a NUL, its length says where it ends.
  std::string padded(pdf);
  if (padded.size() % 2 != 0) padded.push_back('\0');
  RDG_DCMTK_RETURN_IF_ERROR(ds.putAndInsertUint8Array(DCM_EncapsulatedDocument,
                                                      reinterpret_cast<const Uint8*>(padded.data()),
                                                      static_cast<unsigned long>(padded.size())),
                            "Encapsulated Document");
  RDG_DCMTK_RETURN_IF_ERROR(
      ds.putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(pdf.size())),
      "Encapsulated Document Length");
  if (auto set = SetInstance(ds, uids.pdf_series_instance_uid, uids.pdf_sop_instance_uid, r);
      !set.ok()) {
    return set;
  }
  return Part10(file);
}

}  // namespace rdg::documents
