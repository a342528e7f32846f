// A QIDO-RS search (PS3.18 10.6): its matching keys, read from the query string by keyword or by
// tag, at the study, series or instance level, and how a study, series or instance is matched.
// Keys RDG does not match on are named back to the client (Warning: 299) rather than silently
// dropped; fuzzymatching is not offered and is said so the same way.
//
//   study:    StudyInstanceUID, PatientID, PatientName (wildcards * ?, any name group),
//             AccessionNumber, StudyDate (YYYYMMDD, A-B, A-, -B), ModalitiesInStudy
//   series:   the study keys, SeriesInstanceUID, Modality
//   instance: the study and series keys, SOPInstanceUID, SOPClassUID
//   UIDs match any of a list (comma or backslash separated); limit (1..1000, default 100),
//   offset; includefield is accepted (RDG answers the attributes it has).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/dicomweb/dicom_json.h"
#include "storage/records.h"

namespace rdg::dicomweb {

enum class QidoLevel { kStudy, kSeries, kInstance };

struct QidoQuery {
  int limit = 100;
  int offset = 0;
  std::vector<std::string> study_uids;
  std::string patient_id;
  std::string patient_name;
  std::string accession;
  std::string study_date;
  std::string modality_in_study;
  std::vector<std::string> series_uids;
  std::string modality;
  std::vector<std::string> sop_instance_uids;
  std::vector<std::string> sop_class_uids;
  //! What was asked and not matched on (unknown keys, keys of a lower level, fuzzymatching).
  std::vector<std::string> ignored;
};

//! The query of a request's parameters (names as sent: keywords or 8-digit tags).
//! INVALID_ARGUMENT for a limit or offset that is not a number.
absl::StatusOr<QidoQuery> ParseQido(const std::multimap<std::string, std::string>& params,
                                    QidoLevel level);

//! Whether a UID list key (empty: any) names `uid`.
bool UidMatches(const std::vector<std::string>& uids, const std::string& uid);

//! The study-level keys on an exam (ModalitiesInStudy needs its series).
bool MatchesStudy(const QidoQuery& q, const storage::ExamRecord& exam,
                  const std::vector<SeriesSummary>& series);
bool MatchesSeries(const QidoQuery& q, const SeriesSummary& series);
bool MatchesInstance(const QidoQuery& q, const storage::ObjectRecord& object);

//! The Warning header's value for the ignored keys (PS3.18 8.3.4.4), or "" when none.
std::string IgnoredKeysWarning(const QidoQuery& q);

}  // namespace rdg::dicomweb
