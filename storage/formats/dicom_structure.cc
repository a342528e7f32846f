#include "storage/formats/dicom_structure.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/formats/file_kind.h"

namespace rdg::formats {
namespace {

constexpr uint32_t kUndefinedLength = 0xFFFFFFFF;
constexpr uint16_t kItemGroup = 0xFFFE;
constexpr uint16_t kItem = 0xE000;
constexpr uint16_t kItemDelimitation = 0xE00D;
constexpr uint16_t kSequenceDelimitation = 0xE0DD;

//! Random access to the object's bytes, a window at a time (files: pread into a small buffer).
class Bytes {
 public:
  virtual ~Bytes() = default;
  virtual int64_t size() const = 0;
  //! `n` bytes at `offset` (the caller checked the range); empty on an I/O error.
  virtual absl::string_view At(int64_t offset, size_t n) = 0;
};

class MemoryBytes final : public Bytes {
 public:
  explicit MemoryBytes(absl::string_view data) : data_(data) {}
  int64_t size() const override { return static_cast<int64_t>(data_.size()); }
  absl::string_view At(int64_t offset, size_t n) override {
    return data_.substr(static_cast<size_t>(offset), n);
  }

 private:
  absl::string_view data_;
};

class FileBytes final : public Bytes {
 public:
  FileBytes(int fd, int64_t size) : fd_(fd), size_(size) {}
  ~FileBytes() override { ::close(fd_); }
  int64_t size() const override { return size_; }
  absl::string_view At(int64_t offset, size_t n) override {
    if (offset < window_start_ || offset + static_cast<int64_t>(n) > window_end_) {
      const size_t want = static_cast<size_t>(
          std::min<int64_t>(static_cast<int64_t>(buffer_.size()), size_ - offset));
      size_t got = 0;
      while (got < want) {
        const ssize_t r = ::pread(fd_, buffer_.data() + got, want - got, offset + got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      window_start_ = offset;
      window_end_ = offset + static_cast<int64_t>(got);
      if (got < n) return {};
    }
    return absl::string_view(buffer_.data() + (offset - window_start_), n);
  }

 private:
  int fd_;
  int64_t size_;
  std::array<char, 64 * 1024> buffer_;
  int64_t window_start_ = 0;
  int64_t window_end_ = 0;
};

struct Encoding {
  bool explicit_vr = true;
  bool big_endian = false;
};

//! An open container: the dataset, a sequence, an item, or encapsulated pixel data.
struct Frame {
  enum Kind { kDataset, kSequence, kItem, kFragments } kind;
  int64_t end;    //!< offset where a defined-length container ends; -1 when undefined
  int64_t limit;  //!< nothing inside may run past this (nearest defined end, or the file's)
  Encoding encoding;
};

bool IsKnownVr(absl::string_view vr) {
  static constexpr std::array<const char*, 34> kVrs = {
      "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
      "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
      "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};
  return std::any_of(kVrs.begin(), kVrs.end(), [&](const char* v) { return vr == v; });
}

//! VRs whose explicit encoding has 2 reserved bytes and a 4-byte length.
bool HasLongLength(absl::string_view vr) {
  static constexpr std::array<const char*, 13> kLong = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                                        "SV", "UC", "UN", "UR", "UT", "UV"};
  return std::any_of(kLong.begin(), kLong.end(), [&](const char* v) { return vr == v; });
}

uint16_t U16(absl::string_view b, size_t at, bool big_endian) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  return big_endian ? static_cast<uint16_t>(p[0] << 8 | p[1])
                    : static_cast<uint16_t>(p[1] << 8 | p[0]);
}

uint32_t U32(absl::string_view b, size_t at, bool big_endian) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  return big_endian ? (uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3])
                    : (uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0]);
}

std::string Tag(uint16_t group, uint16_t element) {
  return absl::StrFormat("(%04X,%04X)", group, element);
}

absl::Status Broken(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("the DICOM file's structure is broken: ", what,
                   ". The file is truncated or corrupt; export it from the modality again"));
}

class Walker {
 public:
  Walker(Bytes& bytes, const DicomStructureLimits& limits) : bytes_(bytes), limits_(limits) {}

  absl::StatusOr<DicomStructureFacts> Run() {
    int64_t start = 0;
    Encoding dataset;
    const absl::string_view head = bytes_.size() >= 132 ? bytes_.At(0, 132) : absl::string_view();
    if (head.size() == 132 && head.substr(128, 4) == "DICM") {
      auto syntax = ReadMetaGroup(132, start);
      if (!syntax.ok()) return syntax.status();
      if (*syntax == "1.2.840.10008.1.2.1.99") {
        facts_.deflated = true;  // compressed dataset: DCMTK inflates it, the limits of the
        return facts_;           // parser process still bound what that costs
      }
      if (syntax->empty()) {
        dataset = GuessEncoding(start);  // meta information without a transfer syntax
      } else {
        dataset.explicit_vr = *syntax != "1.2.840.10008.1.2";
        dataset.big_endian = *syntax == "1.2.840.10008.1.2.2";
      }
    } else {
      const std::string kind =
          NonDicomKind(bytes_.At(0, static_cast<size_t>(std::min<int64_t>(bytes_.size(), 512))));
      if (!kind.empty()) return absl::InvalidArgumentError(NotDicomMessage(kind));
      dataset = GuessEncoding(0);
    }
    stack_.push_back({Frame::kDataset, bytes_.size(), bytes_.size(), dataset});
    if (auto s = Walk(start); !s.ok()) return s;
    return facts_;
  }

 private:
  //! Reads the file meta group (always explicit VR little endian); returns the transfer syntax
  //! and sets `end` to the first byte after the group.
  absl::StatusOr<std::string> ReadMetaGroup(int64_t pos, int64_t& end) {
    std::string syntax;
    while (pos + 8 <= bytes_.size()) {
      absl::string_view h = bytes_.At(pos, 8);
      if (h.size() < 8) return Broken("the file could not be read");
      if (U16(h, 0, false) != 0x0002) break;
      const std::string vr(h.substr(4, 2));
      int64_t header = 8;
      uint64_t length = U16(h, 6, false);
      if (HasLongLength(vr)) {
        if (pos + 12 > bytes_.size()) return Broken("the file meta information is truncated");
        absl::string_view h12 = bytes_.At(pos, 12);
        if (h12.size() < 12) return Broken("the file could not be read");
        length = U32(h12, 8, false);
        header = 12;
      }
      if (length == kUndefinedLength ||
          pos + header + static_cast<int64_t>(length) > bytes_.size()) {
        return Broken(absl::StrCat("file meta element ", Tag(2, U16(h, 2, false)),
                                   " runs past the end of the file"));
      }
      if (U16(h, 2, false) == 0x0010 && length <= 64) {
        syntax = std::string(bytes_.At(pos + header, static_cast<size_t>(length)));  // "" on error
        while (!syntax.empty() && (syntax.back() == '\0' || syntax.back() == ' '))
          syntax.pop_back();
      }
      ++facts_.elements;
      pos += header + static_cast<int64_t>(length);
    }
    end = pos;
    return syntax;
  }

  //! A dataset without a declared transfer syntax, starting at `pos`: explicit VR if the first
  //! element carries a VR, big endian if that reads the first group number smaller.
  Encoding GuessEncoding(int64_t pos) {
    Encoding e;
    if (bytes_.size() < pos + 8) return e;
    absl::string_view h = bytes_.At(pos, 8);
    e.big_endian = U16(h, 0, true) < U16(h, 0, false);
    e.explicit_vr =
        absl::ascii_isupper(h[4]) && absl::ascii_isupper(h[5]) && IsKnownVr(h.substr(4, 2));
    return e;
  }

  absl::Status Walk(int64_t pos) {
    for (;;) {
      Frame& top = stack_.back();
      if (top.end >= 0 && pos == top.end) {
        if (top.kind == Frame::kDataset) return absl::OkStatus();
        Pop();
        continue;
      }
      if (pos == bytes_.size()) {
        if (stack_.size() > 1) return Broken("the file ends inside an unclosed sequence or item");
        return absl::OkStatus();
      }
      if (pos + 8 > top.limit) {
        return Broken(absl::StrCat("the last ", top.limit - pos,
                                   " bytes of a container are too short for a data element"));
      }
      absl::string_view h = bytes_.At(pos, 8);
      if (h.size() < 8) return Broken("the file could not be read");
      const Encoding enc = top.encoding;
      const uint16_t group = U16(h, 0, enc.big_endian);
      const uint16_t element = U16(h, 2, enc.big_endian);
      if (++facts_.elements > limits_.max_elements) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the DICOM file has more than ", limits_.max_elements,
            " data elements (limits: parsing.max_elements); no modality writes such a file"));
      }
      if (group == kItemGroup) {
        auto next = Delimiter(element, U32(h, 4, enc.big_endian), pos + 8);
        if (!next.ok()) return next.status();
        pos = *next;
        continue;
      }
      auto next = Element(h, group, element, pos);
      if (!next.ok()) return next.status();
      pos = *next;
    }
  }

  //! Items and delimiters (FFFE,xxxx); returns the offset after them.
  absl::StatusOr<int64_t> Delimiter(uint16_t element, uint32_t length, int64_t pos) {
    Frame& top = stack_.back();
    if (element == kItem) {
      if (top.kind == Frame::kFragments) {
        if (length == kUndefinedLength || pos + length > top.limit) {
          return Broken("a pixel data fragment runs past its container");
        }
        return pos + length;
      }
      if (top.kind != Frame::kSequence) return Broken("an item (FFFE,E000) outside any sequence");
      return Push(Frame::kItem, length, pos, top.encoding, Tag(kItemGroup, kItem));
    }
    if (element == kItemDelimitation) {
      if (top.kind != Frame::kItem || top.end >= 0) {
        return Broken("an item delimiter (FFFE,E00D) without an open item of undefined length");
      }
      Pop();
      return pos;
    }
    if (element == kSequenceDelimitation) {
      if ((top.kind != Frame::kSequence && top.kind != Frame::kFragments) || top.end >= 0) {
        return Broken(
            "a sequence delimiter (FFFE,E0DD) without an open sequence of undefined length");
      }
      Pop();
      return pos;
    }
    return Broken(absl::StrCat("unknown delimiter ", Tag(kItemGroup, element)));
  }

  //! An ordinary data element at `pos` whose first 8 bytes are `h`; returns the offset after
  //! its header (containers) or its value.
  absl::StatusOr<int64_t> Element(absl::string_view h, uint16_t group, uint16_t element,
                                  int64_t pos) {
    const Frame& top = stack_.back();
    const Encoding enc = top.encoding;
    std::string vr;
    int64_t header = 8;
    uint32_t length;
    if (enc.explicit_vr) {
      vr = std::string(h.substr(4, 2));
      if (!IsKnownVr(vr)) {
        return Broken(
            absl::StrCat("element ", Tag(group, element), " has no valid value representation"));
      }
      if (HasLongLength(vr)) {
        if (pos + 12 > top.limit)
          return Broken(absl::StrCat("element ", Tag(group, element), " is cut off"));
        absl::string_view h12 = bytes_.At(pos, 12);
        if (h12.size() < 12) return Broken("the file could not be read");
        length = U32(h12, 8, enc.big_endian);
        header = 12;
      } else {
        length = U16(h, 6, enc.big_endian);
      }
    } else {
      length = U32(h, 4, enc.big_endian);
    }
    pos += header;
    const std::string tag = Tag(group, element);
    if (length == kUndefinedLength) {
      if (vr.empty() && !StartsWithItem(pos, enc)) {
        return Broken(absl::StrCat("element ", tag, " has an undefined length but holds no items"));
      }
      if (vr == "SQ" || vr.empty()) return Push(Frame::kSequence, length, pos, enc, tag);
      if (vr == "UN") return Push(Frame::kSequence, length, pos, Encoding{false, false}, tag);
      if ((vr == "OB" || vr == "OW") && group == 0x7FE0) {
        return Push(Frame::kFragments, length, pos, enc, tag);
      }
      return Broken(
          absl::StrCat("element ", tag, " has an undefined length but is not a sequence"));
    }
    if (pos + static_cast<int64_t>(length) > top.limit) {
      return Broken(absl::StrCat("element ", tag, " declares ", length, " bytes but only ",
                                 top.limit - pos, " remain"));
    }
    // Implicit VR carries no type: a value that starts with an item tag is a sequence.
    // (Pixel data is never a sequence: its first two pixels may well read FFFE,E000.)
    const bool sequence =
        vr == "SQ" || (vr.empty() && group != 0x7FE0 && length >= 8 && StartsWithItem(pos, enc));
    if (sequence) return Push(Frame::kSequence, length, pos, enc, tag);
    return pos + static_cast<int64_t>(length);
  }

  //! Whether an item or a sequence delimiter starts at `pos` (inside the current container).
  bool StartsWithItem(int64_t pos, Encoding enc) {
    if (pos + 4 > stack_.back().limit) return false;
    absl::string_view first = bytes_.At(pos, 4);
    if (first.size() < 4 || U16(first, 0, enc.big_endian) != kItemGroup) return false;
    const uint16_t element = U16(first, 2, enc.big_endian);
    return element == kItem || element == kSequenceDelimitation;
  }

  //! Opens a container whose content starts at `pos`.
  absl::StatusOr<int64_t> Push(Frame::Kind kind, uint32_t length, int64_t pos, Encoding enc,
                               const std::string& tag) {
    const Frame& parent = stack_.back();
    int64_t end = -1;
    if (length != kUndefinedLength) {
      end = pos + static_cast<int64_t>(length);
      if (end > parent.limit) {
        return Broken(absl::StrCat(tag, " declares ", length, " bytes but only ",
                                   parent.limit - pos, " remain"));
      }
    }
    if (kind != Frame::kItem) {
      const int32_t depth = ++depth_;
      facts_.deepest_sequence = std::max(facts_.deepest_sequence, depth);
      if (depth > limits_.max_sequence_depth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the DICOM file nests sequences more than ", limits_.max_sequence_depth,
            " levels deep (limits: parsing.max_sequence_depth); no modality writes such a file"));
      }
    }
    stack_.push_back({kind, end, end >= 0 ? end : parent.limit, enc});
    return pos;
  }

  //! Closes the innermost container.
  void Pop() {
    if (stack_.back().kind != Frame::kItem) --depth_;
    stack_.pop_back();
  }

  Bytes& bytes_;
  const DicomStructureLimits& limits_;
  std::vector<Frame> stack_;
  int32_t depth_ = 0;  //!< sequences (and fragment lists) open now
  DicomStructureFacts facts_;
};

}  // namespace

absl::StatusOr<DicomStructureFacts> CheckDicomStructureBuffer(absl::string_view data,
                                                              const DicomStructureLimits& limits) {
  MemoryBytes bytes(data);
  return Walker(bytes, limits).Run();
}

absl::StatusOr<DicomStructureFacts> CheckDicomStructure(const std::string& path,
                                                        const DicomStructureLimits& limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::InternalError(
        absl::StrCat("cannot open the staged object: ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError("cannot stat the staged object");
  }
  FileBytes bytes(fd, st.st_size);
  return Walker(bytes, limits).Run();
}

}  // namespace rdg::formats
