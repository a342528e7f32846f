// Who may see which study over DICOMweb: the same rules as the gRPC API. A clinic searches and
// retrieves its own institution's studies (ExamService); a reader searches the worklist of their
// desks' queues and the priors of the exams they hold (ReadingDesk::Priors), and sees the series
// and retrieves the images of an exam they hold the live claim of, as ReadingService's fetch
// (ReadingDesk::OpenForFetch, audited "fetch_exam" too); an administrator sees no images. Every
// search and retrieval is audited. A study the caller may not see is NOT_FOUND, as if it did not
// exist.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/auth/principal.h"
#include "gateway/common/clock.h"
#include "gateway/worklist/reading_desk.h"
#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"

namespace rdg::dicomweb {

class StudyAccess {
 public:
  struct Stores {
    storage::ExamStore& exams;
    storage::AuditStore& audit;
  };
  StudyAccess(Stores stores, worklist::ReadingDesk& desk, const Clock& clock)
      : stores_(stores), desk_(desk), clock_(clock) {}

  //! A study the caller may find, and whether its series and instances are open to them.
  struct Found {
    storage::ExamRecord exam;
    bool open = false;  //!< a clinic's own; the exams whose live claim a reader holds
  };
  //! The studies the caller may search: at most `max` exams, newest first (a clinic's), or in
  //! worklist order then the priors of the exams they hold (a reader's: as rdg-reader priors,
  //! each prior audited "view_prior"). Audited as "dicomweb_search" with `what` as detail.
  //! `with_priors`: a study search (priors are found at study level only).
  absl::StatusOr<std::vector<Found>> Searchable(const auth::Principal& who, size_t max,
                                                absl::string_view what, bool with_priors);
  //! The exam of `study_instance_uid` the caller may retrieve, audited as `action`.
  absl::StatusOr<storage::ExamRecord> Open(const auth::Principal& who,
                                           const std::string& study_instance_uid,
                                           absl::string_view action);

 private:
  Stores stores_;
  worklist::ReadingDesk& desk_;
  const Clock& clock_;
};

}  // namespace rdg::dicomweb
