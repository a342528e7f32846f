// Terminal output shared by the clients: aligned tables, byte sizes, a progress line on a TTY.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include "rdg/v1/common.pb.h"

namespace rdg::clients {

//! "12.3 MB", "512 B" (decimal units, as operators read network rates).
std::string HumanBytes(double bytes);

//! "45 s", "12 min", "3 h 5 min": an age or a wait, for people.
std::string HumanDuration(int64_t seconds);

//! A message as JSON with the .proto field names (what `--json` prints for API objects).
std::string ProtoToJson(const google::protobuf::Message& message);

//! "2026-11-22 08:27" in the local time zone; "-" for an unset timestamp.
std::string LocalTime(const google::protobuf::Timestamp& t);

//! Prints rows with columns padded to their widest cell (the first row is the header), by display
//! width: a Chinese character takes two columns, so 钾 and K line up.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

//! An HL7/DICOM date-time for people: "2026-11-29 13:01:08". Without a UTC offset
//! (YYYYMMDD[HHMM[SS…]]) it is the sender's local time and shown as written; with one
//! (…+0800, …-0500) the moment is shown in the local zone (TZ). Anything else unchanged.
std::string HumanDateTime(const std::string& hl7_time);

//! `text` cut to `width` display columns (ending in "…"), never in the middle of a character.
std::string Cell(const std::string& text, int width);

//! The table cells of an exam's patient and content: {"张三", "M 45Y", "胸部 CT · CHEST"}.
std::vector<std::string> PatientCells(const rdg::v1::Exam& exam);

//! A progress line redrawn on stderr while work runs, only when stderr is a terminal.
class Progress {
 public:
  Progress(std::string what, int64_t total_items, int64_t total_bytes);
  ~Progress();  //!< erases the line
  void Add(int64_t items, int64_t bytes) {
    items_ += items;
    bytes_ += bytes;
  }
  void AddBytes(int64_t bytes) { bytes_ += bytes; }

 private:
  void Draw();
  const std::string what_;
  const int64_t total_items_;
  const int64_t total_bytes_;
  std::atomic<int64_t> items_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<bool> stop_{false};
  const bool enabled_;
  std::thread thread_;
};

}  // namespace rdg::clients
