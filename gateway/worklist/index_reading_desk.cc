#include "gateway/worklist/index_reading_desk.h"

#include "gateway/config/gateway_config.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gateway/auth/rbac.h"
#include "storage/base/status_macros.h"
#include "storage/vocabulary_proto.h"

namespace rdg::worklist {

IndexReadingDesk::IndexReadingDesk(const rdg::v1::GatewayConfig& config, Stores stores,
                                   const routing::SlaTable& sla, const Clock& clock)
    : stores_(stores),
      sla_(sla),
      clock_(clock),
      lease_(absl::Seconds(config.claims().lease_seconds())),
      zone_(config::DisplayTimeZone(config)) {
  for (const auto& q : config.queues()) {
    queues_of_[q.institution()].push_back(q.name());
    queue_by_name_[q.name()] = q;
  }
  for (const auto& d : config.desks()) {
    institutions_with_desks_.insert(d.institution());
    for (const auto& reader : d.readers()) {
      desks_of_[DeskKey(d.institution(), reader)].push_back(d);
      auto& mine = desk_queues_[DeskKey(d.institution(), reader)];
      for (const auto& q : d.queues()) {
        if (std::find(mine.begin(), mine.end(), q) == mine.end()) mine.push_back(q);
      }
    }
  }
  for (const auto& i : config.institutions()) parent_of_[i.id()] = i.parent();
  fallback_queue_ = config.fallback_queue();
}

std::string IndexReadingDesk::DeskKey(const std::string& institution, const std::string& user) {
  return absl::StrCat(institution, "\x1F", user);
}

const std::vector<std::string>& IndexReadingDesk::InstitutionQueues(
    const std::string& institution) const {
  static const std::vector<std::string> kNone;
  auto it = queues_of_.find(institution);
  return it == queues_of_.end() ? kNone : it->second;
}

const std::vector<std::string>& IndexReadingDesk::QueuesOf(const auth::Principal& reader) const {
  static const std::vector<std::string> kNone;
  if (!institutions_with_desks_.contains(reader.institution)) {
    return InstitutionQueues(reader.institution);
  }
  auto it = desk_queues_.find(DeskKey(reader.institution, reader.user));
  return it == desk_queues_.end() ? kNone : it->second;
}

std::string IndexReadingDesk::SigningDesk(const auth::Principal& reader,
                                          const std::string& queue) const {
  auto it = desks_of_.find(DeskKey(reader.institution, reader.user));
  if (it == desks_of_.end()) return "";
  for (const auto& d : it->second) {
    if (std::find(d.queues().begin(), d.queues().end(), queue) != d.queues().end()) return d.name();
  }
  return "";
}

absl::Status IndexReadingDesk::Audit(const auth::Principal& who, const std::string& action,
                                     const std::string& exam_id, const std::string& detail) {
  return stores_.audit.AppendAudit(auth::AuditBy(who, clock_.Now(), action, exam_id, detail));
}

absl::StatusOr<storage::ExamRecord> IndexReadingDesk::ExamInReadersQueues(
    const auth::Principal& reader, const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(auth::Authorize(reader, auth::Permission::kReadQueues));
  RDG_ASSIGN_OR_RETURN(auto exam, stores_.exams.GetExam(exam_id));
  const auto& mine = QueuesOf(reader);
  if (!exam.has_value() || std::find(mine.begin(), mine.end(), exam->queue) == mine.end()) {
    return absl::NotFoundError(absl::StrCat("no exam ", exam_id, " in the queues of ", reader.user,
                                            "'s desks at ", reader.institution));
  }
  return *std::move(exam);
}

absl::StatusOr<storage::WorklistPage> IndexReadingDesk::Worklist(const auth::Principal& reader,
                                                                 storage::WorklistQuery filter) {
  RDG_RETURN_IF_ERROR(auth::Authorize(reader, auth::Permission::kReadQueues));
  filter.queues = QueuesOf(reader);
  if (filter.queues.empty()) return storage::WorklistPage{};
  RDG_ASSIGN_OR_RETURN(auto page, stores_.worklist.ListWorklist(filter, clock_.Now()));
  RDG_RETURN_IF_ERROR(Audit(reader, "worklist", "",
                            absl::StrCat(page.entries.size(), " exams",
                                         filter.patient.empty() ? "" : " (patient search)")));
  return page;
}

absl::StatusOr<storage::ClaimRecord> IndexReadingDesk::Claim(const auth::Principal& reader,
                                                             const std::string& exam_id,
                                                             bool for_amendment,
                                                             const std::string& amendment_reason) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  const std::string reason(absl::StripAsciiWhitespace(amendment_reason));
  if (for_amendment &&
      (reason.size() < kMinBreakGlassReason || reason.size() > kMaxBreakGlassReason)) {
    return absl::InvalidArgumentError(
        absl::StrCat("say why the report of exam ", exam_id, " needs amending (--reason, ",
                     kMinBreakGlassReason, " to ", kMaxBreakGlassReason,
                     " bytes): the claim opens its reports and the patient's priors to you"));
  }
  absl::StatusOr<storage::ClaimRecord> claim = stores_.worklist.ClaimExam(
      exam_id, reader.user, reader.institution, clock_.Now(), lease_,
      for_amendment ? storage::ClaimAction::kAmend : storage::ClaimAction::kClaim);
  if (!claim.ok()) return ClaimConflict(exam_id, reader, claim.status());
  RDG_RETURN_IF_ERROR(
      Audit(reader, for_amendment ? "claim_for_amendment" : "claim_exam", exam_id, reason));
  return claim;
}

absl::Status IndexReadingDesk::ClaimConflict(const std::string& exam_id,
                                             const auth::Principal& reader, absl::Status refused) {
  if (!absl::IsFailedPrecondition(refused)) return refused;
  absl::StatusOr<std::optional<storage::ClaimRecord>> holder =
      stores_.worklist.GetLiveClaim(exam_id, clock_.Now());
  if (!holder.ok() || !holder->has_value() || (*holder)->holder_user == reader.user) {
    return refused;
  }
  // The same refusal, with the lease's end in the zone people read times in.
  return absl::FailedPreconditionError(
      absl::StrCat("exam ", exam_id, " is claimed by ", (*holder)->holder_user, " until ",
                   absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", (*holder)->expires_at, zone_)));
}

absl::StatusOr<storage::ClaimRecord> IndexReadingDesk::Renew(const auth::Principal& reader,
                                                             const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  absl::StatusOr<storage::ClaimRecord> claim = stores_.worklist.ClaimExam(
      exam_id, reader.user, reader.institution, clock_.Now(), lease_, storage::ClaimAction::kRenew);
  if (!claim.ok()) return ClaimConflict(exam_id, reader, claim.status());
  RDG_RETURN_IF_ERROR(Audit(reader, "renew_claim", exam_id, ""));
  return claim;
}

absl::Status IndexReadingDesk::Release(const auth::Principal& reader, const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  RDG_RETURN_IF_ERROR(stores_.worklist.ReleaseClaim(exam_id, reader.user, clock_.Now()));
  return Audit(reader, "release_claim", exam_id, "");
}

absl::StatusOr<std::vector<storage::ObjectRecord>> IndexReadingDesk::OpenForFetch(
    const auth::Principal& reader, const std::string& exam_id) {
  RDG_RETURN_IF_ERROR(ExamInReadersQueues(reader, exam_id).status());
  RDG_ASSIGN_OR_RETURN(auto claim, stores_.worklist.GetLiveClaim(exam_id, clock_.Now()));
  if (!claim.has_value() || claim->holder_user != reader.user) {
    return absl::FailedPreconditionError(
        absl::StrCat("claim exam ", exam_id, " before fetching it (only the claim holder may)"));
  }
  RDG_RETURN_IF_ERROR(Audit(reader, "fetch_exam", exam_id, ""));
  return stores_.exams.ListObjects(exam_id);
}

absl::StatusOr<int> IndexReadingDesk::ExpireLeases() {
  return stores_.worklist.ExpireClaims(clock_.Now());
}

std::string IndexReadingDesk::NextLevelQueue(const std::string& queue,
                                             const std::string& exam_type) const {
  auto q = queue_by_name_.find(queue);
  if (q == queue_by_name_.end()) return "";
  auto parent = parent_of_.find(q->second.institution());
  if (parent == parent_of_.end() || parent->second.empty()) return "";
  for (const auto& name : InstitutionQueues(parent->second)) {
    if (name == fallback_queue_)
      continue;  // manual triage of unroutable exams, not a reading queue
    const auto& types = queue_by_name_.at(name).exam_types();
    if (types.empty() || std::find(types.begin(), types.end(), exam_type) != types.end()) {
      return name;
    }
  }
  return "";
}

absl::StatusOr<storage::ExamRecord> IndexReadingDesk::Escalate(const auth::Principal& reader,
                                                               const std::string& exam_id,
                                                               const std::string& reason) {
  RDG_ASSIGN_OR_RETURN(auto exam, ExamInReadersQueues(reader, exam_id));
  if (reason.empty()) {
    return absl::InvalidArgumentError("say why the exam needs a consultation (--reason)");
  }
  const std::string target = NextLevelQueue(exam.queue, exam.exam_type);
  if (target.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("there is no consultation queue above ", exam.queue, " for ", exam.exam_type));
  }
  const absl::Time now = clock_.Now();
  storage::Escalation esc{
      exam_id,     target, sla_.ClaimDue(exam.exam_type, storage::ToProto(exam.priority), now),
      reader.user, reason, /*require_claim=*/true};
  RDG_ASSIGN_OR_RETURN(auto moved, stores_.worklist.EscalateExam(esc, now));
  RDG_RETURN_IF_ERROR(Audit(reader, "escalate_exam", exam_id, target));
  return moved;
}

absl::StatusOr<int> IndexReadingDesk::EscalateOverdue() {
  const absl::Time now = clock_.Now();
  RDG_ASSIGN_OR_RETURN(auto overdue, stores_.worklist.ListClaimOverdue(now, 1000));
  int moved = 0;
  for (const auto& exam : overdue) {
    const std::string target = NextLevelQueue(exam.queue, exam.exam_type);
    if (target.empty()) {  // nowhere higher to go: keep it where it is, stop re-checking
      RDG_RETURN_IF_ERROR(stores_.worklist.ClearClaimDue(exam.exam_id));
      continue;
    }
    const std::string reason =
        absl::StrCat("unclaimed past its SLA claim target (due ",
                     absl::FormatTime("%Y-%m-%d %H:%M %Z", exam.claim_due_at, zone_), ")");
    storage::Escalation esc{exam.exam_id,
                            target,
                            sla_.ClaimDue(exam.exam_type, storage::ToProto(exam.priority), now),
                            "system",
                            reason,
                            /*require_claim=*/false};
    auto r = stores_.worklist.EscalateExam(esc, now);
    if (r.ok()) {
      ++moved;
    } else if (!absl::IsFailedPrecondition(r.status())) {  // claimed meanwhile: nothing to do
      return r.status();
    }
  }
  return moved;
}

absl::StatusOr<bool> IndexReadingDesk::ReadsExam(const auth::Principal& reader,
                                                 const std::string& exam_id) {
  RDG_ASSIGN_OR_RETURN(auto claim, stores_.worklist.GetLiveClaim(exam_id, clock_.Now()));
  if (claim.has_value()) {
    return claim->holder_user == reader.user && claim->holder_institution == reader.institution;
  }
  RDG_ASSIGN_OR_RETURN(auto reports, stores_.reports.ListReports(exam_id));
  for (const auto& r : reports) {
    if (r.reader_user == reader.user && r.reader_institution == reader.institution &&
        (r.status == storage::ReportStatus::kFinal ||
         r.status == storage::ReportStatus::kAmended) &&
        clock_.Now() - r.accepted_at <= kAuthorAccess) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<storage::ExamRecord> IndexReadingDesk::ExamInContextOfWork(
    const auth::Principal& reader, const std::string& exam_id, absl::string_view what,
    const std::string& break_glass_reason) {
  RDG_ASSIGN_OR_RETURN(auto exam, ExamInReadersQueues(reader, exam_id));
  RDG_ASSIGN_OR_RETURN(bool reading, ReadsExam(reader, exam_id));
  if (reading) return exam;
  const std::string reason(absl::StripAsciiWhitespace(break_glass_reason));
  if (reason.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " of exam ", exam_id,
                     " are for the reader holding its claim: claim it first, "
                     "or break the glass with a reason (audited and shown to the administrators)"));
  }
  if (reason.size() < kMinBreakGlassReason || reason.size() > kMaxBreakGlassReason) {
    return absl::InvalidArgumentError(absl::StrCat("the break-the-glass reason is ", reason.size(),
                                                   " bytes; say why in ", kMinBreakGlassReason,
                                                   " to ", kMaxBreakGlassReason, " bytes"));
  }
  RDG_RETURN_IF_ERROR(Audit(reader, "break_glass", exam_id, absl::StrCat(what, ": ", reason)));
  return exam;
}

absl::StatusOr<ReadingDesk::PriorsView> IndexReadingDesk::Priors(
    const auth::Principal& reader, const std::string& exam_id,
    const std::string& break_glass_reason) {
  RDG_ASSIGN_OR_RETURN(auto exam,
                       ExamInContextOfWork(reader, exam_id, "priors", break_glass_reason));
  RDG_ASSIGN_OR_RETURN(auto all, linker_.SamePatient(exam, 100));
  PriorsView view;
  // An ECG is compared with earlier ECGs and lab values with earlier values; imaging readers
  // see every prior (a CT is read against the chest film).
  const bool same_type_only = exam.exam_type == "ECG" || exam.exam_type == "LAB";
  for (auto& p : all) {
    if (!same_type_only || p.exam_type == exam.exam_type) view.priors.push_back(std::move(p));
  }
  if (exam.exam_type == "LAB") {
    RDG_ASSIGN_OR_RETURN(view.lab_results, stores_.lab_results.ListLabResults({exam.exam_id}, {}));
    std::vector<std::string> codes, prior_ids;
    for (const auto& r : view.lab_results) codes.push_back(r.code);
    for (const auto& p : view.priors) prior_ids.push_back(p.exam_id);
    if (!codes.empty()) {
      RDG_ASSIGN_OR_RETURN(auto earlier, stores_.lab_results.ListLabResults(prior_ids, codes));
      view.lab_results.insert(view.lab_results.end(), earlier.begin(), earlier.end());
      // A trend per test code, oldest first (HL7 timestamps sort as text).
      std::stable_sort(view.lab_results.begin(), view.lab_results.end(),
                       [](const storage::LabResultRecord& a, const storage::LabResultRecord& b) {
                         return std::tie(a.code, a.observed_at) < std::tie(b.code, b.observed_at);
                       });
    }
  }
  // Mutual recognition crosses institutions: every prior shown is an access of its own.
  for (const auto& p : view.priors) {
    RDG_RETURN_IF_ERROR(Audit(reader, "view_prior", p.exam_id,
                              absl::StrCat("prior of ", exam_id, " from ", p.origin_institution)));
  }
  RDG_RETURN_IF_ERROR(Audit(
      reader, "priors", exam_id,
      absl::StrCat(view.priors.size(), " priors, ", view.lab_results.size(), " lab results")));
  return view;
}

}  // namespace rdg::worklist
