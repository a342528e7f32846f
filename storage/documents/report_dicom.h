// A signed report as DICOM objects in its exam's study, for PACS, viewers and archives that know
// nothing of RDG: a Basic Text SR (the findings, the impression, the reader as verifying
// observer, the images it reads as evidence, the version it amends as predecessor) and an
// Encapsulated PDF (the printable report). Plain structs in, DICOM Part 10 bytes out (Explicit VR
// Little Endian, UTF-8 "ISO_IR 192"); DCMTK (dcmsr, dcmdata) stays behind this header.
//
// UIDs are derived from the report's key (2.25 UIDs from SHA-256), so building the documents of
// one signed version twice gives the same instances: a retried push is a duplicate, never a
// second copy, and the SR of an amendment names its predecessor without a lookup.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rdg::documents {

//! An instance the report reads (Current Requested Procedure Evidence).
struct EvidenceInstance {
  std::string series_instance_uid;
  std::string sop_class_uid;
  std::string sop_instance_uid;
};

//! What the DICOM documents of one signed report version say. Text is UTF-8; DICOM dates and
//! times (DA YYYYMMDD, TM HHMMSS) as stored with the exam.
struct ReportDocumentInput {
  // Patient and study, copied from the exam (the study's own values).
  std::string patient_name;  //!< PN: "FAMILY^GIVEN", ideographic groups kept
  std::string patient_id;
  std::string issuer_of_patient_id;
  std::string patient_birth_date;  //!< DA or empty
  std::string patient_sex;         //!< M, F, O or empty
  std::string study_instance_uid;  //!< required
  std::string study_date;          //!< DA or empty
  std::string study_time;          //!< TM or empty
  std::string accession_number;
  std::string study_description;

  // The report version.
  //! Unique per signed version (e.g. "rp-3f2a…/v2"): the documents' UIDs derive from it.
  std::string document_key;
  //! The key of the version this one amends; empty for a first FINAL report.
  std::string predecessor_key;
  std::string findings;          //!< may be empty
  std::string impression;        //!< required
  std::string amendment_reason;  //!< for an amendment
  bool critical = false;         //!< a critical result: said in the SR and at the PDF's title
  //! The reader who signed (the verifying observer): a display name (PN) and the platform's
  //! user id (the observer's code, scheme "99RDG").
  std::string observer_name;
  std::string observer_user;
  std::string observer_organization;  //!< the reader's institution (LO, required)
  absl::Time signed_at;               //!< verification and content date/time
  //! The zone the dates and times are written in (with TimezoneOffsetFromUTC), as the
  //! platform's institutions read them.
  absl::TimeZone zone;
  std::vector<EvidenceInstance> evidence;  //!< the study's instances the report reads
  std::string software_version;            //!< Software Versions (0018,1020)
};

//! The UIDs a report version's documents get (also those of its predecessor's SR).
struct ReportDocumentUids {
  std::string sr_series_instance_uid;   //!< one SR series per study
  std::string sr_sop_instance_uid;      //!< one SR instance per signed version
  std::string pdf_series_instance_uid;  //!< one PDF series per study
  std::string pdf_sop_instance_uid;     //!< one PDF instance per signed version
};
ReportDocumentUids UidsOf(absl::string_view study_instance_uid, absl::string_view document_key);

//! A "2.25." UID from the first 128 bits of SHA-256 over `parts` (joined with NUL bytes).
std::string DerivedUid(std::initializer_list<absl::string_view> parts);

//! The Basic Text SR (1.2.840.10008.5.1.4.1.1.88.11): COMPLETE, VERIFIED by the observer, with
//! the findings, impression and (for an amendment) addendum as TEXT under a "Diagnostic Imaging
//! Report" container. INVALID_ARGUMENT names what is missing or malformed.
absl::StatusOr<std::string> BuildReportSr(const ReportDocumentInput& report);

//! The Encapsulated PDF (1.2.840.10008.5.1.4.1.1.104.1) holding `pdf` (a PDF document) with the
//! same patient and study.
absl::StatusOr<std::string> BuildReportPdf(const ReportDocumentInput& report,
                                           absl::string_view pdf);

}  // namespace rdg::documents
