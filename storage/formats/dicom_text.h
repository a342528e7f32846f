// The text of a DICOM object as UTF-8: values are converted with the object's Specific Character
// Set (0008,0005) by DCMTK — every defined term DCMTK knows, ISO 2022 code extensions with their
// escape sequences included. Internal to storage/formats (dicom_parser, ecg_waveform).
//
// The rule for bytes the declaration does not explain (no Specific Character Set but non-ASCII
// bytes, or bytes invalid in the declared set): valid UTF-8 is taken as UTF-8; otherwise GB18030,
// which Chinese devices write without declaring it; otherwise the bytes that fit nothing become
// U+FFFD. Each such value leaves a note (no patient data in it) for the object's record.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

class DcmSpecificCharacterSet;

namespace rdg::formats {

//! Characters that end an ISO 2022 code extension in a value, by VR (PS3.5 6.1.2.5.3).
inline constexpr absl::string_view kPersonNameDelimiters = "\\^=";
inline constexpr absl::string_view kStringDelimiters = "\\";      //!< SH, LO, CS
inline constexpr absl::string_view kTextDelimiters = "\r\n\t\f";  //!< ST, LT, UT

class DicomTextDecoder {
 public:
  //! `specific_character_set`: the object's (0008,0005) as read (backslash-separated values).
  explicit DicomTextDecoder(absl::string_view specific_character_set);
  ~DicomTextDecoder();
  DicomTextDecoder(const DicomTextDecoder&) = delete;
  DicomTextDecoder& operator=(const DicomTextDecoder&) = delete;

  //! `raw` (a value as stored, or several backslash-separated) as valid UTF-8 without control
  //! characters (see WithoutControls in text.h).
  std::string Decode(absl::string_view raw, absl::string_view delimiters);

  //! What was not as declared, one line per kind of finding (empty when all was): for the
  //! object's record and the log. Never holds the text itself.
  std::string Notes() const;

 private:
  std::string ToUtf8(absl::string_view raw, absl::string_view delimiters);
  void Note(std::string note);

  std::string declared_;          //!< (0008,0005), blanks trimmed
  bool declared_default_ = true;  //!< none, or the default repertoire only
  bool japanese_ = false;         //!< ISO 2022 IR 87 / IR 159: converted here (see dicom_text.cc)
  bool katakana_g1_ =
      false;  //!< IR 13 as the first value: JIS X 0201 katakana in G1 from the start
  std::unique_ptr<DcmSpecificCharacterSet> converter_;  //!< null when it could not be selected
  std::vector<std::string> notes_;
};

}  // namespace rdg::formats
