#include "gateway/config/gateway_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "storage/base/posix_file.h"
#include "storage/base/status_macros.h"
#include "storage/parsing/parser_defaults.h"

namespace rdg::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;
using rdg::v1::GatewayConfig;

class CollectingErrors final : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectingErrors(absl::string_view source) : source_(source) {}
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {}
  std::string Joined() const { return absl::StrJoin(errors_, "\n"); }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

//! Validation with positions: each check names the element by its location in the file.
class Validator {
 public:
  Validator(const GatewayConfig& config, const TextFormat::ParseInfoTree& tree,
            absl::string_view source)
      : config_(config), tree_(tree), source_(source) {}

  absl::Status Run();

 private:
  //! "FILE:LINE:COL: " of the index-th value of a top-level field (or just "FILE: ").
  std::string Where(absl::string_view field, int index = -1) const {
    const FieldDescriptor* fd = GatewayConfig::descriptor()->FindFieldByName(std::string(field));
    auto loc = tree_.GetLocation(fd, index);
    if (loc.line < 0) return absl::StrCat(source_, ": ");
    return absl::StrCat(source_, ":", loc.line + 1, ":", loc.column + 1, ": ");
  }
  void Fail(std::string message) { errors_.push_back(std::move(message)); }

  void CheckTopLevel();
  void CheckMonitoring();
  void CheckInstitutions();
  void CheckDestinations(int institution);
  void CheckStaff(int institution);
  void CheckQueues();
  void CheckDesks();
  void CheckRoutingRules();
  void CheckSlaPolicies();
  void CheckCriticalValues();

  const GatewayConfig& config_;
  const TextFormat::ParseInfoTree& tree_;
  std::string source_;
  std::vector<std::string> errors_;
  absl::flat_hash_set<std::string> institutions_;
  absl::flat_hash_set<std::string> communities_;
  absl::flat_hash_set<std::string> queues_;
  absl::flat_hash_set<std::string> destinations_;
};

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

bool IsHostPort(absl::string_view hp) {
  size_t colon = hp.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int port = 0;
  return absl::SimpleAtoi(hp.substr(colon + 1), &port) && port >= 0 && port <= 65535;
}

absl::Status Validator::Run() {
  CheckTopLevel();
  CheckInstitutions();
  CheckQueues();
  CheckDesks();
  CheckRoutingRules();
  CheckSlaPolicies();
  CheckCriticalValues();
  if (errors_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
}

void Validator::CheckTopLevel() {
  if (!IsHostPort(config_.listen())) {
    Fail(absl::StrCat(Where("listen"),
                      "listen must be HOST:PORT (port 0 picks a free port), got \"",
                      config_.listen(), "\""));
  }
  if (config_.data_dir().empty()) Fail(absl::StrCat(Where("data_dir"), "data_dir is required"));
  const auto& tls = config_.tls();
  if (tls.ca_file().empty() || tls.cert_file().empty() || tls.key_file().empty()) {
    Fail(absl::StrCat(Where("tls"),
                      "tls needs ca_file, cert_file and key_file: mTLS is required on every call"));
  }
  const auto& l = config_.limits();
  if (l.max_chunk_bytes() > 16 << 20) {
    Fail(absl::StrCat(Where("limits"), "limits.max_chunk_bytes must be at most 16 MiB"));
  }
  if (l.max_object_bytes() < l.max_chunk_bytes()) {
    Fail(absl::StrCat(Where("limits"), "limits.max_object_bytes is smaller than max_chunk_bytes"));
  }
  if (config_.index().has_postgres() && config_.index().postgres().conninfo().empty()) {
    Fail(absl::StrCat(Where("index"), "index.postgres.conninfo is required"));
  }
  if (config_.index().postgres().pool_size() < 0 || config_.index().postgres().pool_size() > 500) {
    Fail(absl::StrCat(Where("index"), "index.postgres.pool_size must be between 1 and 500"));
  }
  const auto& parsing = config_.parsing();
  if (parsing.processes() < 0 || parsing.processes() > 64) {
    Fail(absl::StrCat(Where("parsing"), "parsing.processes must be between 1 and 64"));
  }
  if (parsing.timeout_seconds() < 0 || parsing.memory_bytes() < 0 ||
      parsing.max_sequence_depth() < 0 || parsing.max_elements() < 0) {
    Fail(absl::StrCat(Where("parsing"), "parsing limits must not be negative"));
  }
  if (parsing.memory_bytes() > 0 && parsing.memory_bytes() < (128 << 20)) {
    Fail(absl::StrCat(Where("parsing"), "parsing.memory_bytes must be at least 128 MiB"));
  }
  if (config_.max_signing_clock_skew_seconds() < 0) {
    Fail(absl::StrCat(Where("max_signing_clock_skew_seconds"),
                      "max_signing_clock_skew_seconds must not be negative"));
  }
  if (config_.ingest_nice() < 0 || config_.ingest_nice() > 19) {
    Fail(absl::StrCat(Where("ingest_nice"),
                      "ingest_nice must be between 0 (the same priority as readers' calls) and 19 "
                      "(the lowest), as nice(1)"));
  }
  if (config_.disk_reserve_mb() < 0 || config_.disk_reserve_mb() > (int64_t{1} << 30)) {
    Fail(absl::StrCat(Where("disk_reserve_mb"),
                      "disk_reserve_mb must be between 0 and 1073741824 (1 PiB)"));
  }
  if (!config_.dicomweb().listen().empty() && !IsHostPort(config_.dicomweb().listen())) {
    Fail(absl::StrCat(Where("dicomweb"), "dicomweb.listen must be HOST:PORT, not \"",
                      config_.dicomweb().listen(), "\""));
  }
  for (const std::string& origin : config_.dicomweb().cors_origins()) {
    if (!absl::StartsWith(origin, "https://") && !absl::StartsWith(origin, "http://")) {
      Fail(absl::StrCat(Where("dicomweb"), "dicomweb.cors_origins: \"", origin,
                        "\" is not an origin (scheme://host[:port])"));
    }
  }
  if (const auto& e = config_.audit_export(); !e.syslog_address().empty()) {
    if (!IsHostPort(e.syslog_address()) || absl::EndsWith(e.syslog_address(), ":0")) {
      Fail(absl::StrCat(Where("audit_export.syslog_address"),
                        "audit_export.syslog_address must be host:port (e.g. "
                        "\"audit.example.org:6514\")"));
    }
    if (e.ca_file().empty()) {
      // Not the platform CA by default: it also issues server certificates (clinic agents'),
      // and whoever holds one must not be able to pose as the audit repository.
      Fail(absl::StrCat(Where("audit_export.ca_file"),
                        "audit_export.ca_file is required: the CA that issued the audit "
                        "repository's certificate (PEM)"));
    }
    if (e.batch_records() < 0 || e.batch_records() > 10000) {
      Fail(absl::StrCat(Where("audit_export.batch_records"),
                        "audit_export.batch_records must be between 1 and 10000"));
    }
  }
  for (const std::string& user : config_.backup_users()) {
    const size_t slash = user.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == user.size()) {
      Fail(absl::StrCat(Where("backup_users"),
                        "backup_users entries are \"institution/user\" "
                        "(certificate O/CN), not \"",
                        user, "\""));
    }
  }
  if (config_.audit_checkpoint_seconds() < 0) {
    Fail(absl::StrCat(Where("audit_checkpoint_seconds"),
                      "audit_checkpoint_seconds must not be negative"));
  }
  if (config_.housekeeping_seconds() < 0) {
    Fail(absl::StrCat(Where("housekeeping_seconds"), "housekeeping_seconds must not be negative"));
  }
  CheckMonitoring();
}

void Validator::CheckMonitoring() {
  const auto& m = config_.monitoring();
  if (m.disabled()) return;
  const std::string at = Where("monitoring");
  if (!m.listen().empty() && !IsHostPort(m.listen())) {
    Fail(absl::StrCat(at, "monitoring.listen must be HOST:PORT (port 0 picks a free port), got \"",
                      m.listen(), "\""));
  }
  const std::string host = m.listen().substr(0, m.listen().rfind(':'));
  const bool loopback = m.listen().empty() || host == "127.0.0.1" || host == "[::1]" ||
                        host == "localhost" || absl::StartsWith(host, "127.");
  if (!loopback && !m.tls()) {
    Fail(absl::StrCat(at, "monitoring.listen ", m.listen(),
                      " is not loopback: set tls: true so tokens and figures are not sent in "
                      "clear text"));
  }
}

void Validator::CheckInstitutions() {
  for (const auto& inst : config_.institutions()) {
    if (!inst.community().empty()) communities_.insert(inst.community());
  }
  for (int i = 0; i < config_.institutions_size(); ++i) {
    const auto& inst = config_.institutions(i);
    if (!IsValidId(inst.id())) {
      Fail(absl::StrCat(Where("institutions", i), "institution id \"", inst.id(),
                        "\" must be 1-64 characters of a-z 0-9 - _ ."));
    } else if (!institutions_.insert(inst.id()).second) {
      Fail(
          absl::StrCat(Where("institutions", i), "institution id \"", inst.id(), "\" is repeated"));
    }
    if (inst.level() == rdg::v1::INSTITUTION_LEVEL_UNSPECIFIED) {
      Fail(absl::StrCat(Where("institutions", i), "institution \"", inst.id(), "\" needs a level"));
    }
    CheckDestinations(i);
    CheckStaff(i);
  }
  for (int i = 0; i < config_.institutions_size(); ++i) {
    const auto& inst = config_.institutions(i);
    if (!inst.parent().empty() && !institutions_.contains(inst.parent())) {
      Fail(absl::StrCat(Where("institutions", i), "institution \"", inst.id(),
                        "\" names unknown parent \"", inst.parent(), "\""));
    }
    if (inst.parent() == inst.id() && !inst.id().empty()) {
      Fail(absl::StrCat(Where("institutions", i), "institution \"", inst.id(),
                        "\" is its own parent"));
    }
  }
}

//! An AE title: 1-16 characters of printable ASCII other than backslash (PS3.5 AE), not all
//! spaces.
bool IsAeTitle(absl::string_view ae) {
  if (ae.empty() || ae.size() > 16 || absl::StripAsciiWhitespace(ae).empty()) return false;
  return std::all_of(ae.begin(), ae.end(),
                     [](char c) { return c >= 0x20 && c < 0x7f && c != '\\'; });
}

void Validator::CheckStaff(int institution) {
  const auto& inst = config_.institutions(institution);
  const std::string where = Where("institutions", institution);
  absl::flat_hash_set<std::string> users;
  for (const rdg::v1::StaffMember& m : inst.staff()) {
    const std::string what =
        absl::StrCat("staff \"", m.user(), "\" of institution \"", inst.id(), "\"");
    if (m.user().empty()) {
      Fail(absl::StrCat(where, "a staff entry of institution \"", inst.id(),
                        "\" needs user (the certificate's CN)"));
      continue;
    }
    if (!users.insert(m.user()).second) Fail(absl::StrCat(where, what, " is repeated"));
    // DICOM PN: at most three groups (alphabetic=ideographic=phonetic) of at most five
    // components, no control characters or backslash (PS3.5 6.2).
    const std::vector<absl::string_view> groups = absl::StrSplit(m.name(), '=');
    const bool components_ok = std::all_of(groups.begin(), groups.end(), [](absl::string_view g) {
      return std::count(g.begin(), g.end(), '^') <= 4;
    });
    const bool characters_ok = std::none_of(m.name().begin(), m.name().end(), [](char c) {
      return (static_cast<unsigned char>(c) < 0x20) || c == '\\' || c == 0x7f;
    });
    if (absl::StripAsciiWhitespace(m.name()).empty() || groups.size() > 3 || !components_ok ||
        !characters_ok) {
      Fail(absl::StrCat(where, what,
                        ": name must be a DICOM person name, e.g. \"Wang^Jianguo=王^建国\" "
                        "(family^given, the alphabetic group, then the ideographic)"));
    }
  }
}

void Validator::CheckDestinations(int institution) {
  const auto& inst = config_.institutions(institution);
  const std::string where = Where("institutions", institution);
  for (const rdg::v1::Destination& d : inst.destinations()) {
    const std::string what =
        absl::StrCat("destination \"", d.name(), "\" of institution \"", inst.id(), "\"");
    if (!IsValidId(d.name())) {
      Fail(absl::StrCat(where, "destination name \"", d.name(), "\" of institution \"", inst.id(),
                        "\" must be 1-64 characters of a-z 0-9 - _ ."));
    } else if (!destinations_.insert(d.name()).second) {
      Fail(absl::StrCat(where, "destination name \"", d.name(), "\" is repeated"));
    }
    switch (d.system_case()) {
      case rdg::v1::Destination::kDicom:
        if (!IsHostPort(d.dicom().address())) {
          Fail(absl::StrCat(where, what, ": dicom.address must be host:port"));
        }
        if (!IsAeTitle(d.dicom().called_ae())) {
          Fail(absl::StrCat(where, what,
                            ": dicom.called_ae must be the PACS's AE title (1-16 characters)"));
        }
        if (!d.dicom().calling_ae().empty() && !IsAeTitle(d.dicom().calling_ae())) {
          Fail(absl::StrCat(where, what, ": dicom.calling_ae must be 1-16 characters"));
        }
        if (d.dicom().tls() && d.dicom().ca_file().empty()) {
          Fail(absl::StrCat(where, what,
                            ": dicom.ca_file is required with tls: the CA of the PACS's "
                            "certificate (DICOM TLS does not check the host name, so use a CA "
                            "that issues only the hospital's PACS certificates)"));
        }
        break;
      case rdg::v1::Destination::kHl7:
        if (!IsHostPort(d.hl7().address())) {
          Fail(absl::StrCat(where, what, ": hl7.address must be host:port"));
        }
        if (d.hl7().tls() && d.hl7().ca_file().empty()) {
          Fail(absl::StrCat(where, what,
                            ": hl7.ca_file is required with tls: the CA of the HIS's "
                            "certificate (not defaulted to the platform CA, which also issues "
                            "certificates to clinics)"));
        }
        if (!d.hl7().tls() && (!d.hl7().ca_file().empty() || !d.hl7().server_name().empty())) {
          Fail(absl::StrCat(where, what,
                            ": hl7.ca_file and hl7.server_name apply with tls: true only"));
        }
        break;
      case rdg::v1::Destination::SYSTEM_NOT_SET:
        Fail(absl::StrCat(where, what, " needs dicom { … } or hl7 { … }"));
        break;
    }
  }
}

void Validator::CheckQueues() {
  for (int i = 0; i < config_.queues_size(); ++i) {
    const auto& q = config_.queues(i);
    if (q.name().empty()) {
      Fail(absl::StrCat(Where("queues", i), "queue needs a name"));
    } else if (!queues_.insert(q.name()).second) {
      Fail(absl::StrCat(Where("queues", i), "queue \"", q.name(), "\" is repeated"));
    }
    if (!institutions_.contains(q.institution())) {
      Fail(absl::StrCat(Where("queues", i), "queue \"", q.name(), "\" names unknown institution \"",
                        q.institution(), "\""));
    }
  }
  if (!config_.fallback_queue().empty() && !queues_.contains(config_.fallback_queue())) {
    Fail(absl::StrCat(Where("fallback_queue"), "fallback_queue \"", config_.fallback_queue(),
                      "\" is not a configured queue"));
  }
  if (absl::TimeZone zone;
      !config_.time_zone().empty() && !absl::LoadTimeZone(config_.time_zone(), &zone)) {
    Fail(
        absl::StrCat(Where("time_zone"), "time_zone \"", config_.time_zone(),
                     "\" is not an IANA time zone (e.g. Asia/Shanghai; Debian's tzdata has them)"));
  }
  if (config_.platform_name().size() > 200) {
    Fail(absl::StrCat(Where("platform_name"),
                      "platform_name is longer than 200 bytes: it is one "
                      "heading line of a printed report"));
  }
  if (config_.fallback_queue().empty() && config_.routing_rules_size() > 0) {
    Fail(absl::StrCat(
        source_, ": ",
        "routing rules need a fallback_queue: an exam no rule matches is never dropped"));
  }
}

void Validator::CheckDesks() {
  absl::flat_hash_map<std::string, std::string> queue_institution;
  for (const auto& q : config_.queues()) queue_institution[q.name()] = q.institution();
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config_.desks_size(); ++i) {
    const auto& d = config_.desks(i);
    const std::string at = Where("desks", i);
    if (d.name().empty()) {
      Fail(absl::StrCat(at, "desk needs a name"));
    } else if (!names.insert(d.name()).second) {
      Fail(absl::StrCat(at, "desk \"", d.name(), "\" is repeated"));
    }
    if (!institutions_.contains(d.institution())) {
      Fail(absl::StrCat(at, "desk \"", d.name(), "\" names unknown institution \"", d.institution(),
                        "\""));
    }
    if (d.queues().empty() || d.readers().empty()) {
      Fail(absl::StrCat(at, "desk \"", d.name(), "\" needs queues and readers"));
    }
    for (const auto& q : d.queues()) {
      auto it = queue_institution.find(q);
      if (it == queue_institution.end()) {
        Fail(absl::StrCat(at, "desk \"", d.name(), "\" names unknown queue \"", q, "\""));
      } else if (it->second != d.institution()) {
        Fail(absl::StrCat(at, "desk \"", d.name(), "\" of ", d.institution(), " names queue \"", q,
                          "\" of ", it->second, ": a desk reads its own institution's queues"));
      }
    }
    for (const auto& r : d.readers()) {
      if (r.empty()) Fail(absl::StrCat(at, "desk \"", d.name(), "\" lists an empty reader name"));
    }
  }
}

void Validator::CheckRoutingRules() {
  for (int i = 0; i < config_.routing_rules_size(); ++i) {
    const auto& r = config_.routing_rules(i);
    std::string at = Where("routing_rules", i);
    if (!queues_.contains(r.queue())) {
      Fail(absl::StrCat(at, "routing rule \"", r.name(), "\" names unknown queue \"", r.queue(),
                        "\""));
    }
    for (const auto& o : r.origin_institutions()) {
      if (!institutions_.contains(o)) {
        Fail(absl::StrCat(at, "routing rule \"", r.name(), "\" names unknown institution \"", o,
                          "\""));
      }
    }
    for (const auto& c : r.origin_communities()) {
      if (!communities_.contains(c)) {
        Fail(absl::StrCat(at, "routing rule \"", r.name(), "\" names unknown community \"", c,
                          "\""));
      }
    }
  }
}

void Validator::CheckSlaPolicies() {
  for (int i = 0; i < config_.sla_policies_size(); ++i) {
    const auto& p = config_.sla_policies(i);
    if (p.received_to_claimed_minutes() < 0 || p.received_to_final_minutes() < 0 ||
        p.final_to_acknowledged_minutes() < 0 || p.critical_acknowledgement_minutes() < 0) {
      Fail(absl::StrCat(Where("sla_policies", i), "SLA targets must not be negative"));
    }
    if (p.exam_type().empty()) {
      Fail(absl::StrCat(Where("sla_policies", i), "SLA policy needs an exam_type (or \"*\")"));
    }
  }
}

void Validator::CheckCriticalValues() {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < config_.critical_values_size(); ++i) {
    const auto& r = config_.critical_values(i);
    const std::string at = Where("critical_values", i);
    if (r.code().empty()) Fail(absl::StrCat(at, "a critical value rule needs a test code"));
    if (!r.has_below() && !r.has_above()) {
      Fail(absl::StrCat(at, "critical value rule \"", r.code(), "\" needs below and/or above"));
    }
    if (r.has_below() && r.has_above() && r.below() >= r.above()) {
      Fail(absl::StrCat(at, "critical value rule \"", r.code(),
                        "\": below must be less than above"));
    }
    if (!seen.insert(absl::StrCat(r.code(), "^", r.coding_system())).second) {
      Fail(absl::StrCat(at, "critical value rule for \"", r.code(), "\" is repeated"));
    }
  }
}

void ApplyDefaults(GatewayConfig* c) {
  auto* l = c->mutable_limits();
  if (l->max_object_bytes() <= 0) l->set_max_object_bytes(int64_t{2} << 30);
  if (l->max_chunk_bytes() <= 0) l->set_max_chunk_bytes(4 << 20);
  if (l->max_open_uploads() <= 0) l->set_max_open_uploads(1000);
  if (l->upload_ttl_seconds() <= 0) l->set_upload_ttl_seconds(7 * 24 * 3600);
  if (l->max_concurrent_uploads() <= 0) l->set_max_concurrent_uploads(256);
  if (l->max_lab_message_bytes() <= 0) l->set_max_lab_message_bytes(1 << 20);
  if (l->max_concurrent_uploads_per_institution() <= 0) {
    l->set_max_concurrent_uploads_per_institution(32);
  }
  if (l->upload_idle_seconds() <= 0) l->set_upload_idle_seconds(600);
  if (l->max_upload_stream_seconds() <= 0) l->set_max_upload_stream_seconds(6 * 3600);
  parsing::ApplyParserDefaults(*c->mutable_parsing());
  if (c->claims().lease_seconds() <= 0) c->mutable_claims()->set_lease_seconds(900);
  if (c->worker_threads() <= 0) c->set_worker_threads(16);
  if (c->ingest_threads() <= 0) c->set_ingest_threads(16);
  if (!c->has_ingest_nice()) c->set_ingest_nice(10);
  if (c->time_zone().empty()) c->set_time_zone(std::string(kDefaultTimeZone));
  if (c->platform_name().empty()) c->set_platform_name(std::string(kDefaultPlatformName));
  if (c->shutdown_grace_seconds() <= 0) c->set_shutdown_grace_seconds(20);
  if (c->max_signing_clock_skew_seconds() <= 0) c->set_max_signing_clock_skew_seconds(600);
  if (c->housekeeping_seconds() <= 0) c->set_housekeeping_seconds(10);
  if (c->audit_checkpoint_seconds() <= 0) c->set_audit_checkpoint_seconds(300);
  if (!c->has_disk_reserve_mb()) c->set_disk_reserve_mb(1024);
  if (c->outbound().max_backoff_seconds() <= 0) c->mutable_outbound()->set_max_backoff_seconds(300);
  if (c->outbound().timeout_seconds() <= 0) c->mutable_outbound()->set_timeout_seconds(30);
  if (c->outbound().keep_sent_days() <= 0) c->mutable_outbound()->set_keep_sent_days(90);
  for (auto& inst : *c->mutable_institutions()) {
    for (auto& d : *inst.mutable_destinations()) {
      if (d.has_dicom() && d.dicom().calling_ae().empty()) d.mutable_dicom()->set_calling_ae("RDG");

      if (d.has_hl7()) {
        auto* h = d.mutable_hl7();
        if (h->receiving_application().empty()) h->set_receiving_application("HIS");
        if (h->receiving_facility().empty()) h->set_receiving_facility(inst.id());
      }
    }
  }
  if (auto* e = c->mutable_audit_export(); !e->syslog_address().empty()) {
    if (e->cert_file().empty()) e->set_cert_file(c->tls().cert_file());
    if (e->key_file().empty()) e->set_key_file(c->tls().key_file());
    if (e->batch_records() <= 0) e->set_batch_records(500);
  }
  if (c->monitoring().listen().empty()) c->mutable_monitoring()->set_listen("127.0.0.1:9464");
  // Never open to anyone: without TLS a token is required, made at start-up if the file is new.
  if (c->monitoring().token_file().empty() && !c->monitoring().tls()) {
    c->mutable_monitoring()->set_token_file(c->data_dir() + "/monitoring.token");
  }
  if (!c->index().has_postgres() && c->index().sqlite().path().empty()) {
    c->mutable_index()->mutable_sqlite()->set_path(c->data_dir() + "/index.sqlite");
  }
}

}  // namespace

absl::TimeZone DisplayTimeZone(const GatewayConfig& config) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(
          config.time_zone().empty() ? std::string(kDefaultTimeZone) : config.time_zone(), &zone)) {
    return absl::UTCTimeZone();
  }
  return zone;
}

absl::StatusOr<GatewayConfig> ParseConfig(absl::string_view text, absl::string_view source,
                                          const ConfigOverrides& overrides) {
  GatewayConfig config;
  TextFormat::Parser parser;
  CollectingErrors errors(source);
  TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(errors.Joined());
  }
  if (!overrides.listen.empty()) config.set_listen(overrides.listen);
  if (!overrides.data_dir.empty()) config.set_data_dir(overrides.data_dir);
  if (!overrides.monitoring_listen.empty()) {
    config.mutable_monitoring()->set_listen(overrides.monitoring_listen);
  }
  if (auto s = Validator(config, tree, source).Run(); !s.ok()) return s;
  ApplyDefaults(&config);
  return config;
}

absl::StatusOr<GatewayConfig> LoadConfigFile(const std::string& path,
                                             const ConfigOverrides& overrides) {
  RDG_ASSIGN_OR_RETURN(std::string text, storage::ReadWholeFile(path, "config file"));
  return ParseConfig(text, path, overrides);
}

}  // namespace rdg::config
