#include "gateway/dicomweb/qido.h"

#include <algorithm>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace rdg::dicomweb {
namespace {

//! A QIDO date match: "YYYYMMDD", "A-B", "A-", "-B".
bool DateMatches(absl::string_view filter, const std::string& date) {
  if (filter.empty()) return true;
  const size_t dash = filter.find('-');
  if (dash == absl::string_view::npos) return date == filter;
  const absl::string_view from = filter.substr(0, dash), to = filter.substr(dash + 1);
  return !date.empty() && (from.empty() || date >= from) && (to.empty() || date <= to);
}

//! A QIDO wildcard match ('*' any run, '?' one character), ASCII case-insensitive.
bool Wildcard(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0, star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || absl::ascii_tolower(pattern[p]) == absl::ascii_tolower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

//! A patient name matches when the pattern matches the whole PN, one of its groups, or one of
//! them with '^' read as a space (a search for "zhang*" or "张*" finds "Zhang^San=张^三").
bool NameMatches(absl::string_view pattern, const std::string& name) {
  if (pattern.empty()) return true;
  if (Wildcard(pattern, name)) return true;
  for (absl::string_view group : absl::StrSplit(name, '=')) {
    if (Wildcard(pattern, group) ||
        Wildcard(pattern, absl::StrJoin(absl::StrSplit(group, '^'), " ")) ||
        Wildcard(pattern, absl::StrJoin(absl::StrSplit(group, '^'), ""))) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> UidList(const std::string& value) {
  return absl::StrSplit(value, absl::ByAnyChar(",\\"), absl::SkipWhitespace());
}

struct Key {
  const char* keyword;
  const char* tag;
  QidoLevel level;  //!< the lowest level it belongs to
  void (*set)(QidoQuery&, const std::string&);
};

const Key kKeys[] = {
    {"StudyInstanceUID", "0020000D", QidoLevel::kStudy,
     [](QidoQuery& q, const std::string& v) { q.study_uids = UidList(v); }},
    {"PatientID", "00100020", QidoLevel::kStudy,
     [](QidoQuery& q, const std::string& v) { q.patient_id = v; }},
    {"PatientName", "00100010", QidoLevel::kStudy,
     [](QidoQuery& q, const std::string& v) { q.patient_name = v; }},
    {"AccessionNumber", "00080050", QidoLevel::kStudy,
     [](QidoQuery& q, const std::string& v) { q.accession = v; }},
    {"StudyDate", "00080020", QidoLevel::kStudy,
     [](QidoQuery& q, const std::string& v) { q.study_date = v; }},
    {"ModalitiesInStudy", "00080061", QidoLevel::kStudy,
     [](QidoQuery& q, const std::string& v) { q.modality_in_study = v; }},
    {"SeriesInstanceUID", "0020000E", QidoLevel::kSeries,
     [](QidoQuery& q, const std::string& v) { q.series_uids = UidList(v); }},
    {"Modality", "00080060", QidoLevel::kSeries,
     [](QidoQuery& q, const std::string& v) { q.modality = v; }},
    {"SOPInstanceUID", "00080018", QidoLevel::kInstance,
     [](QidoQuery& q, const std::string& v) { q.sop_instance_uids = UidList(v); }},
    {"SOPClassUID", "00080016", QidoLevel::kInstance,
     [](QidoQuery& q, const std::string& v) { q.sop_class_uids = UidList(v); }},
};

}  // namespace

bool UidMatches(const std::vector<std::string>& uids, const std::string& uid) {
  return uids.empty() || absl::c_linear_search(uids, uid);
}

absl::StatusOr<QidoQuery> ParseQido(const std::multimap<std::string, std::string>& params,
                                    QidoLevel level) {
  QidoQuery q;
  for (const auto& [name, value] : params) {
    if (name == "limit" || name == "offset") {
      int n = 0;
      if (!absl::SimpleAtoi(value, &n)) {
        return absl::InvalidArgumentError(absl::StrCat(name, " must be a number"));
      }
      (name == "limit" ? q.limit : q.offset) = n;
      continue;
    }
    if (name == "includefield") continue;
    if (name == "fuzzymatching") {
      if (absl::AsciiStrToLower(value) == "true") q.ignored.push_back("fuzzymatching");
      continue;
    }
    const Key* key = absl::c_find_if(kKeys, [&](const Key& k) {
      return name == k.keyword || absl::AsciiStrToUpper(name) == k.tag;
    });
    if (key == std::end(kKeys) || key->level > level) {
      q.ignored.push_back(name);
      continue;
    }
    key->set(q, value);
  }
  q.limit = std::clamp(q.limit, 1, 1000);
  q.offset = std::max(q.offset, 0);
  return q;
}

bool MatchesStudy(const QidoQuery& q, const storage::ExamRecord& e,
                  const std::vector<SeriesSummary>& series) {
  return UidMatches(q.study_uids, e.study_instance_uid) &&
         (q.patient_id.empty() || e.patient.patient_id == q.patient_id) &&
         (q.accession.empty() || e.accession_number == q.accession) &&
         DateMatches(q.study_date, e.study_date) && NameMatches(q.patient_name, e.patient.name) &&
         (q.modality_in_study.empty() || absl::c_any_of(series, [&](const SeriesSummary& s) {
            return absl::c_linear_search(UidList(q.modality_in_study), s.modality);
          }));
}

bool MatchesSeries(const QidoQuery& q, const SeriesSummary& s) {
  return UidMatches(q.series_uids, s.series_instance_uid) &&
         (q.modality.empty() || s.modality == q.modality);
}

bool MatchesInstance(const QidoQuery& q, const storage::ObjectRecord& o) {
  return UidMatches(q.sop_instance_uids, o.sop_instance_uid) &&
         UidMatches(q.sop_class_uids, o.sop_class_uid);
}

std::string IgnoredKeysWarning(const QidoQuery& q) {
  if (q.ignored.empty()) return "";
  // The names are the client's: only printable ASCII, no quotes, and not too many, go back.
  std::vector<std::string> names;
  for (const std::string& n : q.ignored) {
    if (names.size() == 20) {
      names.push_back("...");
      break;
    }
    std::string safe = n.substr(0, 64);
    for (char& c : safe) {
      if (!absl::ascii_isprint(static_cast<unsigned char>(c)) || c == '"' || c == '\\') c = '?';
    }
    names.push_back(std::move(safe));
  }
  return absl::StrCat("299 rdg \"The following query keys are not supported and were ignored: ",
                      absl::StrJoin(names, ", "), "\"");
}

}  // namespace rdg::dicomweb
