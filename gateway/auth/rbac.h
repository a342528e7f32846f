// The role-based access policy. Every service method asks it before touching data.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "gateway/auth/principal.h"

namespace rdg::auth {

enum class Permission {
  kUpload,          //!< open sessions, stream bytes, commit objects
  kListOwnExams,    //!< list and inspect the caller institution's exams
  kDownloadExam,    //!< download an exam's stored objects
  kReadQueues,      //!< worklists, claims, fetches and reports in the institution's queues
  kReceiveReports,  //!< the origin clinic's report feed and acknowledgements
  kAdminister,      //!< figures (queues, turnaround, breaches) and the audit log; no images
};

//! PERMISSION_DENIED unless the principal's role holds the permission.
absl::Status Authorize(const Principal& principal, Permission permission);

//! Whether the principal may see the exam that originated at `origin_institution`. NOT_FOUND
//! otherwise, so that one clinic cannot even learn that another's exam id exists.
absl::Status AuthorizeExamAccess(const Principal& principal, const std::string& exam_id,
                                 const std::string& origin_institution);

}  // namespace rdg::auth
