#include "gateway/monitoring/dashboard.h"

#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gateway/monitoring/turnaround.h"
#include "storage/base/status_macros.h"
#include "storage/formats/text.h"

namespace rdg::monitoring {
namespace {

using nlohmann::json;

constexpr int kHours = 24;

//! ISO 8601 with the zone's offset ("2026-11-30T09:00:00+08:00"): times read by people.
std::string Iso(absl::Time t, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", t, zone);
}

json Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

//! Received→final turnaround per county and completion hour (p50, p90, count); counts every
//! completed stage into `completed`.
json TatOverTime(const std::vector<storage::StageRecord>& stages, absl::Time since,
                 absl::TimeZone zone, const config::InstitutionDirectory& directory,
                 int64_t& completed) {
  // TAT over time: received→final per county and completion hour.
  std::map<std::string, std::vector<std::vector<storage::StageRecord>>> by_county;
  for (const auto& s : stages) {
    if (!s.ended_at) continue;
    ++completed;
    if (s.stage != storage::Stage::kReceivedToFinal) continue;
    auto& hours = by_county[CountyOf(s.origin_institution, directory)];
    hours.resize(kHours);
    const int64_t h = (absl::ToUnixSeconds(*s.ended_at) - absl::ToUnixSeconds(since)) / 3600;
    if (h >= 0 && h < kHours) hours[h].push_back(s);
  }
  json labels = json::array();
  for (int h = 0; h < kHours; ++h) labels.push_back(Iso(since + absl::Hours(h), zone));
  json series = json::array();
  for (const auto& [county, hours] : by_county) {
    json p50 = json::array(), p90 = json::array(), count = json::array();
    for (const auto& in_hour : hours) {
      auto figures =
          ComputeTurnaround(in_hour, rdg::v1::TURNAROUND_GROUPING_UNSPECIFIED, directory);
      if (figures.empty() || figures[0].stages.empty()) {
        p50.push_back(nullptr);
        p90.push_back(nullptr);
        count.push_back(0);
        continue;
      }
      const StageFigures& f = figures[0].stages[0];
      p50.push_back(Seconds(f.p50));
      p90.push_back(Seconds(f.p90));
      count.push_back(f.count);
    }
    series.push_back({{"county", county},
                      {"county_name", directory.Name(county)},
                      {"p50", p50},
                      {"p90", p90},
                      {"count", count}});
  }
  return {{"stage", "final"}, {"hours", labels}, {"series", series}};
}

//! SLA compliance per county and stage, over the whole window.
json Compliance(const std::vector<storage::StageRecord>& stages,
                const config::InstitutionDirectory& directory) {
  json compliance = json::array();
  for (const auto& g : ComputeTurnaround(stages, rdg::v1::BY_COUNTY, directory)) {
    for (const auto& f : g.stages) {
      compliance.push_back({{"county", g.key},
                            {"county_name", directory.Name(g.key)},
                            {"stage", StageLabel(f.stage)},
                            {"count", f.count},
                            {"with_target", f.with_target},
                            {"share", f.WithinShare()},
                            {"p50_seconds", Seconds(f.p50)},
                            {"p90_seconds", Seconds(f.p90)}});
    }
  }
  return compliance;
}

//! Every configured queue (also when empty), and any other with open exams.
json Queues(std::vector<storage::QueueFigureRecord> queues,
            const std::vector<std::string>& queue_names, absl::Time now,
            const config::InstitutionDirectory& directory) {
  std::map<std::string, storage::QueueFigureRecord> by_queue;
  for (const auto& q : queue_names) by_queue[q].queue = q;
  for (auto& q : queues) by_queue[q.queue] = std::move(q);
  json qs = json::array();
  for (const auto& [name, q] : by_queue) {
    qs.push_back(
        {{"queue", name},
         {"queue_name", directory.QueueName(name)},
         {"depth", q.depth},
         {"being_read", q.claimed},
         {"waiting", q.depth - q.claimed},
         {"overdue", q.overdue},
         {"oldest_waiting_seconds",
          q.oldest_waiting_since ? Seconds(now - *q.oldest_waiting_since) : json(nullptr)}});
  }
  return qs;
}

json OpenBreaches(const std::vector<storage::StageRecord>& breaches, absl::Time now,
                  absl::TimeZone zone, const config::InstitutionDirectory& directory) {
  json bs = json::array();
  for (const auto& b : breaches) {
    const std::string county = CountyOf(b.origin_institution, directory);
    bs.push_back({{"exam_id", b.exam_id},
                  {"stage", StageLabel(b.stage)},
                  {"priority", storage::Name(b.priority)},
                  {"exam_type", formats::ToValidUtf8(b.exam_type)},  // from a device
                  {"queue", b.queue},
                  {"queue_name", directory.QueueName(b.queue)},
                  {"origin", b.origin_institution},
                  {"origin_name", directory.Name(b.origin_institution)},
                  {"county", county},
                  {"county_name", directory.Name(county)},
                  {"due_at", Iso(b.due_at, zone)},
                  {"overrun_seconds", Seconds(b.Overrun(now))}});
  }
  return bs;
}

//! Priors and reports seen without a claim: who, when, which exam, what. The reader's reason is
//! free text that may name the patient: administrators read it with `rdg-admin audit`.
json BrokenGlass(const std::vector<storage::AuditRecord>& broken, absl::TimeZone zone,
                 const config::InstitutionDirectory& directory) {
  json glass_rows = json::array();
  for (const auto& a : broken) {
    const std::string detail = formats::ToValidUtf8(a.detail);
    glass_rows.push_back({{"at", Iso(a.at, zone)},
                          {"user", a.user},
                          {"institution", a.institution},
                          {"institution_name", directory.Name(a.institution)},
                          {"exam_id", a.exam_id},
                          {"what", detail.substr(0, detail.find(':'))}});
  }
  return glass_rows;
}

}  // namespace

absl::StatusOr<std::string> DashboardData(const DashboardStores& stores,
                                          const config::InstitutionDirectory& directory,
                                          const std::vector<std::string>& queue_names,
                                          absl::Time now, absl::TimeZone zone) {
  // Hour buckets aligned to the hour, the last one the current (partial) hour.
  const absl::Time last_hour = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 3600 * 3600);
  const absl::Time since = last_hour - absl::Hours(kHours - 1);
  RDG_ASSIGN_OR_RETURN(auto stages, stores.sla.ListStagesEnded(since, now + absl::Seconds(1)));
  RDG_ASSIGN_OR_RETURN(auto queues, stores.worklist.ListQueueFigures(now));
  storage::BreachQuery open_breaches;
  open_breaches.open_only = true;
  open_breaches.limit = 100;
  RDG_ASSIGN_OR_RETURN(auto breaches, stores.sla.ListBreaches(open_breaches));
  RDG_ASSIGN_OR_RETURN(auto counts, stores.sla.CountOpenBreaches());
  storage::AuditQuery glass;
  glass.action = "break_glass";
  glass.since = now - absl::Hours(kHours);
  glass.limit = 100;
  RDG_ASSIGN_OR_RETURN(auto broken, stores.audit.ListAudit(glass));
  RDG_ASSIGN_OR_RETURN(auto conflicts, stores.identity_conflicts.ListIdentityConflicts(
                                           now - absl::Hours(kHours), 1000));

  json out;
  out["generated_at"] = Iso(now, zone);
  out["window_hours"] = kHours;
  out["time_zone"] = absl::StrCat(zone.name(), " (", absl::FormatTime("%Z", now, zone), ")");

  int64_t completed = 0;
  out["tat"] = TatOverTime(stages, since, zone, directory, completed);
  out["compliance"] = Compliance(stages, directory);
  out["queues"] = Queues(std::move(queues), queue_names, now, directory);
  out["breaches"] = OpenBreaches(breaches, now, zone, directory);
  out["break_glass"] = BrokenGlass(broken, zone, directory);
  int64_t open_total = 0;
  for (const auto& c : counts) open_total += c.open;
  out["totals"] = {{"completed_stages", completed},
                   {"open_breaches", open_total},
                   {"identity_conflicts", conflicts.size()},
                   {"break_glass", broken.size()}};
  return out.dump();
}

}  // namespace rdg::monitoring
