#include "clients/common/output.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/numbers.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "storage/formats/text.h"

namespace rdg::clients {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string HumanDuration(int64_t seconds) {
  if (seconds < 60) return std::to_string(seconds) + " s";
  if (seconds < 3600) return std::to_string(seconds / 60) + " min";
  return std::to_string(seconds / 3600) + " h " + std::to_string(seconds / 60 % 60) + " min";
}

std::string ProtoToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  static_cast<void>(google::protobuf::util::MessageToJsonString(message, &out, options));
  return out;
}

std::string LocalTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  std::time_t secs = t.seconds();
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
  return buf;
}

void PrintTable(const std::vector<std::vector<std::string>>& table) {
  // Cells hold what devices and people sent: never a control character on the terminal.
  std::vector<std::vector<std::string>> rows = table;
  for (auto& row : rows) {
    for (auto& cell : row) cell = formats::WithoutControls(formats::ToValidUtf8(cell));
  }
  std::vector<int> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], formats::DisplayWidth(row[i]));
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? formats::PadToWidth(row[i], width[i] + 2) : row[i];
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string HumanDateTime(const std::string& t) {
  const size_t written = std::min<size_t>(t.find_first_of("+-."), t.size());  // before .S or ±ZZZZ
  const bool digits = std::all_of(t.begin(), t.begin() + std::min<size_t>(written, 14),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || written < 8) return t;
  // With a UTC offset (…+0800, …-0500) the moment is known: shown in the local zone (TZ).
  if (const size_t sign = t.find_first_of("+-");
      sign != std::string::npos && sign >= 12 && t.size() == sign + 5) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, oh = 0, om = 0;
    const bool parsed =
        absl::SimpleAtoi(t.substr(0, 4), &y) && absl::SimpleAtoi(t.substr(4, 2), &mo) &&
        absl::SimpleAtoi(t.substr(6, 2), &d) && absl::SimpleAtoi(t.substr(8, 2), &h) &&
        absl::SimpleAtoi(t.substr(10, 2), &mi) &&
        (sign < 14 || absl::SimpleAtoi(t.substr(12, 2), &s)) &&
        absl::SimpleAtoi(t.substr(sign + 1, 2), &oh) &&
        absl::SimpleAtoi(t.substr(sign + 3, 2), &om);
    if (parsed && oh <= 14 && om < 60) {
      const int offset = (t[sign] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
      const absl::Time at =
          absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::FixedTimeZone(offset));
      return absl::FormatTime("%Y-%m-%d %H:%M:%S", at, absl::LocalTimeZone());
    }
  }
  std::string out = t.substr(0, 4) + "-" + t.substr(4, 2) + "-" + t.substr(6, 2);
  if (written >= 12) out += " " + t.substr(8, 2) + ":" + t.substr(10, 2);
  if (written >= 14) out += ":" + t.substr(12, 2);
  return out;
}

std::string Cell(const std::string& text, int width) {
  return formats::TruncateToWidth(formats::ToValidUtf8(text), width);
}

std::vector<std::string> PatientCells(const rdg::v1::Exam& exam) {
  const rdg::v1::Patient& p = exam.patient();
  std::string age = p.age();
  while (age.size() > 2 && age[0] == '0') age.erase(0, 1);  // "045Y" → "45Y"
  std::string sex_age = p.sex();
  if (!age.empty()) sex_age += (sex_age.empty() ? "" : " ") + age;
  std::string what = exam.study_description();
  if (!exam.body_part().empty() && what.find(exam.body_part()) == std::string::npos) {
    what += (what.empty() ? "" : " · ") + exam.body_part();
  }
  const std::string& name = p.display_name().empty() ? p.name() : p.display_name();
  return {Cell(name, 24), sex_age, Cell(what, 28)};
}

Progress::Progress(std::string what, int64_t total_items, int64_t total_bytes)
    : what_(std::move(what)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      enabled_(isatty(STDERR_FILENO) == 1) {
  if (enabled_) {
    thread_ = std::thread([this] {
      while (!stop_) {
        Draw();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // redraw rate, not a wait
      }
    });
  }
}

Progress::~Progress() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
    std::fprintf(stderr, "\r\033[K");
  }
}

void Progress::Draw() {
  const double share = total_bytes_ > 0 ? double(bytes_) / double(total_bytes_) : 0;
  const int filled = static_cast<int>(share * 30);
  std::string bar(static_cast<size_t>(std::clamp(filled, 0, 30)), '#');
  bar.resize(30, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%%  %lld/%lld  %s", what_.c_str(), bar.c_str(),
               share * 100, static_cast<long long>(items_.load()),
               static_cast<long long>(total_items_), HumanBytes(double(bytes_)).c_str());
  std::fflush(stderr);
}

}  // namespace rdg::clients
