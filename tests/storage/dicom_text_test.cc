// DICOM text to UTF-8 (formats/dicom_text, through ParseDicomFile) and the text primitives
// (formats/text). The objects are written byte by byte: the character sets under test are in
// the bytes, as modalities write them (pydicom writes ISO 2022 IR 58 without its escapes).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/formats/dicom_parser.h"
#include "storage/formats/text.h"
#include "tests/mocks/dicom_builder.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::formats {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

//! A Part 10 CT object with the given Specific Character Set (none if empty) and raw values of
//! Patient's Name and Study Description.
std::string ObjectWith(const std::string& charset, const std::string& name,
                       const std::string& description = "CT") {
  using namespace rdg::testing;
  std::string ds;
  if (!charset.empty()) ds += Element(0x0008, 0x0005, "CS", charset);
  ds += Element(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2") +
        Element(0x0008, 0x0018, "UI", "1.2.826.0.1.3680043.8.498.1") +
        Element(0x0008, 0x0060, "CS", "CT") + Element(0x0008, 0x1030, "LO", description) +
        Element(0x0010, 0x0010, "PN", name) + Element(0x0010, 0x0020, "LO", "P1") +
        Element(0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.8.498.2") +
        Element(0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.8.498.3");
  return Part10(ds, "1.2.840.10008.1.2.1", "1.2.826.0.1.3680043.8.498.1");
}

class DicomTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitDicomToolkit().ok()); }
  DicomSummary Parse(const std::string& charset, const std::string& name,
                     const std::string& description = "CT") {
    auto s = ParseDicomFile(dir_.Write("x.dcm", ObjectWith(charset, name, description)));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : DicomSummary{};
  }
  testing::TempDir dir_;
};

// 张^三 in GB18030 / GBK: D5C5 5E C8FD.
const std::string kZhangSanGb = "\xD5\xC5^\xC8\xFD";

TEST_F(DicomTextTest, Gb18030) {
  DicomSummary s = Parse("GB18030", kZhangSanGb, "\xD0\xD8\xB2\xBF CT");  // 胸部 CT
  EXPECT_EQ(s.patient_name, "张^三");
  EXPECT_EQ(s.study_description, "胸部 CT");
  EXPECT_THAT(s.text_notes, IsEmpty());
}

TEST_F(DicomTextTest, Gb18030FourByteCharacters) {
  // 𠀀 (U+20000) is four bytes in GB18030: 95 32 82 36.
  EXPECT_EQ(Parse("GB18030", "\x95\x32\x82\x36^\xC8\xFD").patient_name, "𠀀^三");
}

TEST_F(DicomTextTest, Gbk) { EXPECT_EQ(Parse("GBK", kZhangSanGb).patient_name, "张^三"); }

TEST_F(DicomTextTest, Iso2022Ir58WithEscapes) {
  // PS3.5 Annex K.2: the ideographic group in GB 2312 after ESC $ ) A.
  DicomSummary s =
      Parse("\\ISO 2022 IR 58", "Zhang^XiaoDong=\x1B$)A\xD5\xC5^\x1B$)A\xD0\xA1\xB6\xAB=");
  EXPECT_EQ(s.patient_name, "Zhang^XiaoDong=张^小东=");
  EXPECT_THAT(s.text_notes, IsEmpty());
  EXPECT_EQ(PersonNameForDisplay(s.patient_name), "张小东 (Zhang XiaoDong)");
}

TEST_F(DicomTextTest, Iso2022Ir149Korean) {
  // PS3.5 Annex I.2.
  DicomSummary s = Parse("\\ISO 2022 IR 149",
                         "Hong^Gildong=\x1B$)C\xFB\xF3^\x1B$)C\xD1\xCE\xD4\xD7=\x1B$)C\xC8\xAB^"
                         "\x1B$)C\xB1\xE6\xB5\xBF");
  EXPECT_EQ(s.patient_name, "Hong^Gildong=洪^吉洞=홍^길동");
}

TEST_F(DicomTextTest, Iso2022Ir87Japanese) {
  // PS3.5 Annex H.3.1: JIS X 0208 after ESC $ B, back to ASCII with ESC ( B.
  DicomSummary s = Parse("\\ISO 2022 IR 87",
                         "Yamada^Tarou=\x1B$B;3ED\x1B(B^\x1B$BB@O:\x1B(B=\x1B$B$d$^$@\x1B(B^"
                         "\x1B$B$?$m$&\x1B(B");
  EXPECT_EQ(s.patient_name, "Yamada^Tarou=山田^太郎=やまだ^たろう");
  EXPECT_THAT(s.text_notes, IsEmpty());
}

TEST_F(DicomTextTest, Iso2022Ir13And87Katakana) {
  // PS3.5 Annex H.3.2: half-width katakana (IR 13 in G1) and kanji.
  DicomSummary s = Parse("ISO 2022 IR 13\\ISO 2022 IR 87",
                         "\xD4\xCF\xC0\xDE^\xC0\xDB\xB3=\x1B$B;3ED\x1B(J^\x1B$BB@O:\x1B(J=");
  EXPECT_EQ(s.patient_name, "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=");
}

TEST_F(DicomTextTest, Latin1) {
  DicomSummary s = Parse("ISO_IR 100", "Buc^J\xE9r\xF4me");
  EXPECT_EQ(s.patient_name, "Buc^Jérôme");
  EXPECT_EQ(PersonNameForDisplay(s.patient_name), "Buc Jérôme");
}

TEST_F(DicomTextTest, Utf8Declared) {
  EXPECT_EQ(Parse("ISO_IR 192", "王^芳").patient_name, "王^芳");
}

TEST_F(DicomTextTest, UndeclaredGb18030IsReadAsGb18030AndNoted) {
  DicomSummary s = Parse("", kZhangSanGb);
  EXPECT_EQ(s.patient_name, "张^三");
  EXPECT_THAT(s.text_notes, HasSubstr("without a Specific Character Set"));
  EXPECT_THAT(s.text_notes, HasSubstr("read as GB18030"));
}

TEST_F(DicomTextTest, UndeclaredUtf8IsReadAsUtf8AndNoted) {
  DicomSummary s = Parse("", "王^芳");
  EXPECT_EQ(s.patient_name, "王^芳");
  EXPECT_THAT(s.text_notes, HasSubstr("read as UTF-8"));
}

TEST_F(DicomTextTest, DeclaredUtf8ButGbBytes) {
  DicomSummary s = Parse("ISO_IR 192", kZhangSanGb);
  EXPECT_EQ(s.patient_name, "张^三");
  EXPECT_THAT(s.text_notes, HasSubstr("not valid 'ISO_IR 192': read as GB18030"));
}

TEST_F(DicomTextTest, BytesThatFitNothingBecomeReplacementCharacters) {
  DicomSummary s = Parse("", "QZX\x80^\xFF");
  EXPECT_TRUE(IsValidUtf8(s.patient_name));
  EXPECT_EQ(s.patient_name, "QZX\xEF\xBF\xBD^\xEF\xBF\xBD");
  EXPECT_THAT(s.text_notes, HasSubstr("U+FFFD"));
  // The note says how, never what: no patient text in it.
  EXPECT_THAT(s.text_notes, Not(HasSubstr("QZX")));
}

TEST_F(DicomTextTest, UnknownCharacterSetIsNotedAndTextStaysUtf8) {
  DicomSummary s = Parse("KLINGON", kZhangSanGb);
  EXPECT_EQ(s.patient_name, "张^三");
  EXPECT_THAT(s.text_notes, HasSubstr("'KLINGON' is not one this gateway can convert"));
}

TEST_F(DicomTextTest, TrailBytesEqualToBackslashStayInTheCharacter) {
  // 淺 is 9C 5C in GBK: DCMTK's normalisation would cut the value at the 5C and trim the parts.
  DicomSummary s = Parse("GBK", kZhangSanGb, "\x9C\x5C CT");
  EXPECT_EQ(s.study_description, "淺 CT");
}

TEST_F(DicomTextTest, LoneIso2022Terms) {
  EXPECT_EQ(Parse("ISO 2022 IR 100", "Buc^J\xE9r\xF4me").patient_name, "Buc^Jérôme");
  EXPECT_EQ(Parse("ISO 2022 IR 58", "\x1B$)A\xD5\xC5^\x1B$)A\xC8\xFD").patient_name, "张^三");
}

TEST_F(DicomTextTest, ControlCharactersNeverReachAScreen) {
  // An OSC sequence that would retitle a reader's terminal, and a C1 control from Latin-1.
  DicomSummary s = Parse("ISO_IR 100",
                         "EVIL\x1B]0;pwned\x07^\x9B"
                         "2J");
  EXPECT_EQ(s.patient_name,
            "EVIL\xEF\xBF\xBD]0;pwned\xEF\xBF\xBD^\xEF\xBF\xBD"
            "2J");
  EXPECT_EQ(WithoutControls("a\xE2\x80\xAE"
                            "b"),
            "a\xEF\xBF\xBD"
            "b");  // U+202E
}

TEST_F(DicomTextTest, AsciiNeedsNoConversion) {
  DicomSummary s = Parse("ISO_IR 100", "DOE^JOHN");
  EXPECT_EQ(s.patient_name, "DOE^JOHN");
  EXPECT_THAT(s.text_notes, IsEmpty());
}

TEST(TextTest, Utf8ValidityAndRepair) {
  EXPECT_TRUE(IsValidUtf8("张三 Jérôme"));
  EXPECT_FALSE(IsValidUtf8("\xD5\xC5"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xE5\xBC"));      // cut short
  EXPECT_EQ(ToValidUtf8("a\xE5\xBC"), "a\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8("ok"), "ok");
}

TEST(TextTest, XmlEscapeKeepsMarkupOutAndTheTextOnOneLine) {
  EXPECT_EQ(XmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(XmlEscape("张三 </EventOutcomeDescription><x/>"),
            "张三 &lt;/EventOutcomeDescription&gt;&lt;x/&gt;");
  EXPECT_EQ(XmlEscape("line\nbreak\ttab\x01"), "line break tab ");
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBE"), " ");  // U+FFFE: not an XML character
  EXPECT_EQ(XmlEscape("\xC3("), "?(");        // invalid UTF-8
}

TEST(TextTest, DisplayWidth) {
  EXPECT_EQ(DisplayWidth("abc"), 3);
  EXPECT_EQ(DisplayWidth("钾"), 2);
  EXPECT_EQ(DisplayWidth("张三 (ZHANG)"), 12);
  EXPECT_EQ(DisplayWidth("ｶﾀｶﾅ"), 4);       // half-width katakana: one column each
  EXPECT_EQ(DisplayWidth("Ａ"), 2);         // fullwidth Latin
  EXPECT_EQ(DisplayWidth("e\xCC\x81"), 1);  // e + combining acute
  EXPECT_EQ(PadToWidth("钾", 5), "钾   ");
  EXPECT_EQ(DisplayWidth(PadToWidth("钾", 5)), DisplayWidth(PadToWidth("K", 5)));
  EXPECT_EQ(TruncateToWidth("张三丰李四", 5), "张三…");
  EXPECT_EQ(TruncateToWidth("short", 10), "short");
}

TEST(TextTest, PersonNamesAsPeopleWriteThem) {
  EXPECT_EQ(PersonNameForDisplay("张^三"), "张三");
  EXPECT_EQ(PersonNameForDisplay("Buc^Jérôme"), "Buc Jérôme");
  EXPECT_EQ(PersonNameForDisplay("ZHANG^SAN=张^三"), "张三 (ZHANG SAN)");
  EXPECT_EQ(PersonNameForDisplay("=王^芳"), "王芳");
  EXPECT_EQ(PersonNameForDisplay("Smith^John^^Dr.^Jr."), "Dr. Smith John Jr.");
  EXPECT_EQ(PersonNameForDisplay("DOE"), "DOE");
  EXPECT_EQ(PersonNameForDisplay("A^B\\C^D=Z^W"), "A B");  // two people: the first one
  EXPECT_EQ(PersonNameForDisplay(""), "");
}

}  // namespace
}  // namespace rdg::formats
