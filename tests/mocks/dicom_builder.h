// Builds DICOM byte strings for tests: well-formed minimal objects and the hostile shapes the
// gateway must refuse (deep nesting, lying lengths, unclosed sequences, element floods).
// Explicit VR little endian unless told otherwise.
#pragma once

#include <cstdint>
#include <string>

namespace rdg::testing {

inline std::string Le16(uint16_t v) { return {char(v & 0xFF), char(v >> 8)}; }
inline std::string Le32(uint32_t v) {
  return {char(v & 0xFF), char((v >> 8) & 0xFF), char((v >> 16) & 0xFF), char(v >> 24)};
}

//! One explicit-VR little-endian element; `length` overrides the value's length (lies).
inline std::string Element(uint16_t group, uint16_t element, const std::string& vr,
                           std::string value, int64_t length = -1) {
  const bool long_form = vr == "OB" || vr == "OW" || vr == "SQ" || vr == "UN" || vr == "UT" ||
                         vr == "UC" || vr == "UR" || vr == "OD" || vr == "OF" || vr == "OL";
  if (length < 0 && value.size() % 2 == 1) value += (vr == "UI" ? '\0' : ' ');
  const uint32_t n =
      length < 0 ? static_cast<uint32_t>(value.size()) : static_cast<uint32_t>(length);
  std::string out = Le16(group) + Le16(element) + vr;
  out += long_form ? Le16(0) + Le32(n) : Le16(static_cast<uint16_t>(n));
  return out + value;
}

inline constexpr uint32_t kUndefined = 0xFFFFFFFF;
inline std::string ItemStart(uint32_t length = kUndefined) {
  return Le16(0xFFFE) + Le16(0xE000) + Le32(length);
}
inline std::string ItemEnd() { return Le16(0xFFFE) + Le16(0xE00D) + Le32(0); }
inline std::string SequenceEnd() { return Le16(0xFFFE) + Le16(0xE0DD) + Le32(0); }
//! A sequence header of undefined length (Content Sequence).
inline std::string SequenceStart() { return Element(0x0040, 0xA730, "SQ", "", kUndefined); }

//! The identifying elements of a Secondary Capture object with the given SOP Instance UID.
inline std::string MinimalDataset(const std::string& sop_uid = "1.2.826.0.1.3680043.8.498.1") {
  return Element(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.7") +
         Element(0x0008, 0x0018, "UI", sop_uid) + Element(0x0008, 0x0060, "CS", "OT") +
         Element(0x0010, 0x0010, "PN", "TEST^HOSTILE") + Element(0x0010, 0x0020, "LO", "H1") +
         Element(0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.8.498.2") +
         Element(0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.8.498.3");
}

//! Preamble, "DICM" and the file meta group around `dataset`.
inline std::string Part10(const std::string& dataset,
                          const std::string& transfer_syntax = "1.2.840.10008.1.2.1",
                          const std::string& sop_uid = "1.2.826.0.1.3680043.8.498.1") {
  std::string meta = Element(0x0002, 0x0001, "OB", std::string("\0\1", 2)) +
                     Element(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7") +
                     Element(0x0002, 0x0003, "UI", sop_uid) +
                     Element(0x0002, 0x0010, "UI", transfer_syntax);
  meta = Element(0x0002, 0x0000, "UL", Le32(static_cast<uint32_t>(meta.size()))) + meta;
  return std::string(128, '\0') + "DICM" + meta + dataset;
}

//! `levels` sequences of undefined length, each holding one item, all closed (or none).
inline std::string NestedSequences(int levels, bool closed) {
  std::string out;
  for (int i = 0; i < levels; ++i) out += SequenceStart() + ItemStart();
  if (closed) {
    for (int i = 0; i < levels; ++i) out += ItemEnd() + SequenceEnd();
  }
  return out;
}

//! `count` short elements, all distinct private tags (the memory-heavy shape).
inline std::string ManyElements(int64_t count) {
  std::string out;
  out.reserve(static_cast<size_t>(count) * 10);
  const std::string value = "AB";
  for (int64_t i = 0; i < count; ++i) {
    const auto group = static_cast<uint16_t>(0x0021 + 2 * (i / 0xEFFF));
    out +=
        Le16(group) + Le16(static_cast<uint16_t>(0x1000 + (i % 0xEFFF))) + "SH" + Le16(2) + value;
  }
  return out;
}

}  // namespace rdg::testing
