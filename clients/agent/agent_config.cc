#include "clients/agent/agent_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "storage/base/posix_file.h"
#include "storage/parsing/parser_defaults.h"

namespace rdg::agent {
namespace {

namespace fs = std::filesystem;

class CollectingErrors final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors.push_back(absl::StrCat("line ", line + 1, ":", column + 1, ": ", message));
  }
  std::vector<std::string> errors;
};

bool ValidHostPort(const std::string& s) {
  const size_t colon = s.rfind(':');
  int port = -1;
  return colon != std::string::npos && colon > 0 && absl::SimpleAtoi(s.substr(colon + 1), &port) &&
         port >= 0 && port <= 65535;
}

//! DICOM AE titles: 1–16 characters of the default repertoire, no backslash or control chars.
bool ValidAeTitle(const std::string& ae) {
  return !ae.empty() && ae.size() <= 16 && std::all_of(ae.begin(), ae.end(), [](char c) {
    return c >= 0x20 && c < 0x7F && c != '\\';
  }) && !absl::StripAsciiWhitespace(ae).empty();
}

void Resolve(std::string* path, const fs::path& base) {
  if (!path->empty() && fs::path(*path).is_relative()) *path = (base / *path).lexically_normal();
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& KnownStorageSopClasses() {
  static const auto* kClasses = new std::vector<std::pair<std::string, std::string>>{
      {"CR", "1.2.840.10008.5.1.4.1.1.1"},
      {"DX", "1.2.840.10008.5.1.4.1.1.1.1"},
      {"DX_PROCESSING", "1.2.840.10008.5.1.4.1.1.1.1.1"},
      {"MG", "1.2.840.10008.5.1.4.1.1.1.2"},
      {"CT", "1.2.840.10008.5.1.4.1.1.2"},
      {"ENHANCED_CT", "1.2.840.10008.5.1.4.1.1.2.1"},
      {"US_MULTIFRAME", "1.2.840.10008.5.1.4.1.1.3.1"},
      {"MR", "1.2.840.10008.5.1.4.1.1.4"},
      {"ENHANCED_MR", "1.2.840.10008.5.1.4.1.1.4.1"},
      {"US", "1.2.840.10008.5.1.4.1.1.6.1"},
      {"SC", "1.2.840.10008.5.1.4.1.1.7"},
      {"ECG_12_LEAD", "1.2.840.10008.5.1.4.1.1.9.1.1"},
      {"ECG_GENERAL", "1.2.840.10008.5.1.4.1.1.9.1.2"},
      {"XA", "1.2.840.10008.5.1.4.1.1.12.1"},
      {"NM", "1.2.840.10008.5.1.4.1.1.20"},
      {"SR_BASIC", "1.2.840.10008.5.1.4.1.1.88.11"},
      {"SR_ENHANCED", "1.2.840.10008.5.1.4.1.1.88.22"},
      {"SR_COMPREHENSIVE", "1.2.840.10008.5.1.4.1.1.88.33"},
      {"PDF", "1.2.840.10008.5.1.4.1.1.104.1"},
      {"PT", "1.2.840.10008.5.1.4.1.1.128"},
      {"OPHTHALMIC", "1.2.840.10008.5.1.4.1.1.77.1.5.1"},
      {"VL_PHOTO", "1.2.840.10008.5.1.4.1.1.77.1.4"},
  };
  return *kClasses;
}

std::string SopClassUid(const std::string& name_or_uid) {
  const std::string upper = absl::AsciiStrToUpper(name_or_uid);
  for (const auto& [name, uid] : KnownStorageSopClasses()) {
    if (upper == name || name_or_uid == uid) return uid;
  }
  const bool looks_like_uid = !name_or_uid.empty() && name_or_uid.size() <= 64 &&
                              std::all_of(name_or_uid.begin(), name_or_uid.end(), [](char c) {
                                return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
                              });
  return looks_like_uid ? name_or_uid : "";
}

absl::StatusOr<rdg::v1::AgentConfig> LoadAgentConfig(const std::string& path) {
  auto text = storage::ReadWholeFile(path, "the agent's configuration");
  if (!text.ok()) return text.status();
  rdg::v1::AgentConfig c;
  google::protobuf::TextFormat::Parser parser;
  CollectingErrors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(*text, &c)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", absl::StrJoin(errors.errors, "; ")));
  }
  std::vector<std::string> problems;
  auto need = [&problems](bool ok, std::string what) {
    if (!ok) problems.push_back(std::move(what));
  };
  need(!c.data_dir().empty(), "data_dir is required");
  need(ValidHostPort(c.gateway().address()), "gateway.address must be HOST:PORT");
  need(!c.gateway().ca().empty(), "gateway.ca is required (the platform CA)");
  need(!c.gateway().certificate().empty() && !c.gateway().private_key().empty(),
       "gateway.certificate and gateway.private_key are required (the clinic's identity)");
  need(!c.dicom().listen().empty() || !c.hl7().listen().empty(),
       "at least one of dicom.listen and hl7.listen is required");
  if (!c.dicom().listen().empty()) {
    need(ValidHostPort(c.dicom().listen()), "dicom.listen must be HOST:PORT");
    need(ValidAeTitle(c.dicom().ae_title()), "dicom.ae_title must be 1 to 16 characters");
    for (const auto& ae : c.dicom().allowed_calling_ae_titles()) {
      need(ValidAeTitle(ae),
           absl::StrCat("dicom.allowed_calling_ae_titles: invalid AE title '", ae, "'"));
    }
    for (const auto& sop : c.dicom().sop_classes()) {
      need(!SopClassUid(sop).empty(),
           absl::StrCat("dicom.sop_classes: unknown SOP class '", sop, "' (a name such as CT, ",
                        "US, ECG_12_LEAD, or a UID)"));
    }
    need(c.dicom().max_associations() >= 0 && c.dicom().max_associations() <= 64,
         "dicom.max_associations must be between 1 and 64");
    need(c.dicom().max_connections() >= 0 && c.dicom().max_connections() <= 4096,
         "dicom.max_connections must be between 1 and 4096");
    if (const auto& tls = c.dicom().tls(); !tls.listen().empty()) {
      need(ValidHostPort(tls.listen()), "dicom.tls.listen must be HOST:PORT");
      need(!tls.certificate().empty() && !tls.private_key().empty(),
           "dicom.tls needs certificate and private_key: the agent's server certificate for "
           "devices (EKU serverAuth; deploy/dev-pki.sh makes agent-dicom-a1.pem)");
    }
  }
  if (!c.hl7().listen().empty()) {
    need(ValidHostPort(c.hl7().listen()), "hl7.listen must be HOST:PORT");
    need(c.hl7().max_connections() >= 0 && c.hl7().max_connections() <= 256,
         "hl7.max_connections must be between 1 and 256");
  }
  need(c.forwarder().parallel() >= 0 && c.forwarder().parallel() <= 64,
       "forwarder.parallel must be between 1 and 64");
  need(c.forwarder().max_bytes_per_second() >= 0, "forwarder.max_bytes_per_second must be >= 0");
  absl::TimeZone zone;
  need(c.time_zone().empty() || absl::LoadTimeZone(c.time_zone(), &zone),
       absl::StrCat("time_zone '", c.time_zone(),
                    "' is not an IANA time zone (e.g. Asia/Shanghai)"));
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", absl::StrJoin(problems, "; ")));
  }
  // Defaults.
  auto& d = *c.mutable_dicom();
  if (d.max_associations() == 0) d.set_max_associations(8);
  if (d.timeout_seconds() <= 0) d.set_timeout_seconds(30);
  if (d.associate_timeout_seconds() <= 0) d.set_associate_timeout_seconds(10);
  if (d.max_connections() <= 0) d.set_max_connections(std::max(64, 2 * d.max_associations()));
  if (d.sop_classes().empty()) {
    for (const auto& [name, uid] : KnownStorageSopClasses()) d.add_sop_classes(name);
  }
  auto& h = *c.mutable_hl7();
  if (h.max_connections() == 0) h.set_max_connections(8);
  if (h.max_message_bytes() <= 0) h.set_max_message_bytes(1 << 20);
  if (h.idle_timeout_seconds() <= 0) h.set_idle_timeout_seconds(600);
  if (h.frame_timeout_seconds() <= 0) h.set_frame_timeout_seconds(30);
  auto& f = *c.mutable_forwarder();
  if (f.parallel() == 0) f.set_parallel(4);
  if (f.initial_backoff_ms() <= 0) f.set_initial_backoff_ms(500);
  if (f.max_backoff_ms() <= 0) f.set_max_backoff_ms(60000);
  if (f.chunk_bytes() <= 0) f.set_chunk_bytes(1 << 20);
  if (f.quarantine_after() <= 0) f.set_quarantine_after(3);
  if (c.inbox().poll_seconds() <= 0) c.mutable_inbox()->set_poll_seconds(10);
  if (c.shutdown_grace_seconds() <= 0) c.set_shutdown_grace_seconds(20);
  if (c.time_zone().empty()) c.set_time_zone("Asia/Shanghai");
  parsing::ApplyParserDefaults(*c.mutable_checks()->mutable_parsing());
  if (c.checks().max_object_bytes() <= 0)
    c.mutable_checks()->set_max_object_bytes(int64_t{2} << 30);
  if (c.checks().gateway_limits_refresh_seconds() <= 0) {
    c.mutable_checks()->set_gateway_limits_refresh_seconds(3600);
  }
  const fs::path base = fs::absolute(path).parent_path();
  Resolve(c.mutable_data_dir(), base);
  Resolve(c.mutable_gateway()->mutable_ca(), base);
  Resolve(c.mutable_gateway()->mutable_certificate(), base);
  Resolve(c.mutable_gateway()->mutable_private_key(), base);
  Resolve(c.mutable_inbox()->mutable_dir(), base);
  if (auto* tls = c.mutable_dicom()->mutable_tls(); !tls->listen().empty()) {
    Resolve(tls->mutable_certificate(), base);
    Resolve(tls->mutable_private_key(), base);
    Resolve(tls->mutable_device_ca(), base);
  }
  return c;
}

}  // namespace rdg::agent
