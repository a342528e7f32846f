#include "storage/formats/hl7_lab.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"

namespace rdg::formats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The corpus is built here rather than stored: each message is a list of segments made from
// field-number -> value maps, so field positions are explicit. The patients are invented.

constexpr char kNationalId[] = "110101199003074514";
// GB18030 bytes: 张 D5C5, 三 C8FD; 億 837C and 乗 815C have '|' (0x7C) and '\' (0x5C) as trail
// bytes (checked with iconv -f GB18030 -t UTF-8), so a parser that split before converting would
// cut them.
constexpr char kGbZhangSan[] = "\xD5\xC5^\xC8\xFD";
constexpr char kGbTricky[] = "\x83\x7C\x81\x5C";
constexpr char kUtf8Tricky[] = "億乗";

std::string Seg(absl::string_view name, const std::map<int, std::string>& fields) {
  std::string out(name);
  const int last = fields.empty() ? 0 : fields.rbegin()->first;
  for (int i = 1; i <= last; ++i) {
    auto it = fields.find(i);
    absl::StrAppend(&out, "|", it == fields.end() ? "" : it->second);
  }
  return out;
}

//! MSH: fields from MSH-3 on (MSH-1 and MSH-2 are fixed to the usual delimiters).
std::string Msh(const std::map<int, std::string>& fields) {
  std::string out = "MSH|^~\\&";
  const int last = fields.empty() ? 2 : fields.rbegin()->first;
  for (int i = 3; i <= last; ++i) {
    auto it = fields.find(i);
    absl::StrAppend(&out, "|", it == fields.end() ? "" : it->second);
  }
  return out;
}

struct MshOptions {
  std::string control_id = "MSG-1";
  std::string type = "ORU^R01^ORU_R01";
  std::string version = "2.5.1";
  std::string charset;
  std::string sending_facility = "CLINIC-A1";

  MshOptions& Id(std::string v) { return Set(&MshOptions::control_id, std::move(v)); }
  MshOptions& Type(std::string v) { return Set(&MshOptions::type, std::move(v)); }
  MshOptions& Version(std::string v) { return Set(&MshOptions::version, std::move(v)); }
  MshOptions& Charset(std::string v) { return Set(&MshOptions::charset, std::move(v)); }
  MshOptions& Facility(std::string v) { return Set(&MshOptions::sending_facility, std::move(v)); }

 private:
  MshOptions& Set(std::string MshOptions::*field, std::string v) {
    this->*field = std::move(v);
    return *this;
  }
};

std::string StandardMsh(const MshOptions& o) {
  std::map<int, std::string> f = {
      {3, "LIS"},  {4, o.sending_facility}, {5, "RDG"}, {6, "COUNTY-A"}, {7, "20261122083000"},
      {9, o.type}, {10, o.control_id},      {11, "P"},  {12, o.version}};
  if (!o.charset.empty()) f[18] = o.charset;
  return Msh(f);
}

std::string Pid(const std::string& name = "Wang^Fang") {
  return Seg("PID", {{1, "1"},
                     {3, absl::StrCat("PAT-1001^^^CLINIC^MR~", kNationalId, "^^^CHN^NNCHN")},
                     {5, name},
                     {7, "19900307"},
                     {8, "F"}});
}

std::string Obr(int set_id, const std::string& service, const std::string& filler = "") {
  return Seg(
      "OBR",
      {{1, std::to_string(set_id)}, {3, filler}, {4, service}, {7, "20261122083000"}, {25, "F"}});
}

std::string Obx(int set_id, const std::string& type, const std::string& code,
                const std::string& value, const std::string& units = "",
                const std::string& range = "", const std::string& flags = "") {
  return Seg("OBX", {{1, std::to_string(set_id)},
                     {2, type},
                     {3, code},
                     {5, value},
                     {6, units},
                     {7, range},
                     {8, flags},
                     {11, "F"}});
}

std::string Join(const std::vector<std::string>& segments, absl::string_view end = "\r") {
  return absl::StrCat(absl::StrJoin(segments, end), end);
}

//! A small valid ORU^R01 with one OBX of the given type and value.
std::string OneValue(const std::string& type, const std::string& value,
                     const MshOptions& msh = MshOptions()) {
  return Join(
      {StandardMsh(msh), Pid(), Obr(1, "CHEM^Chemistry"), Obx(1, type, "X-1^Test^L", value)});
}

LabMessage ParseOk(absl::string_view bytes) {
  LabParseOutcome out = ParseLabMessage(bytes);
  EXPECT_FALSE(out.rejection.has_value())
      << out.rejection->error_code << " " << out.rejection->location << " "
      << out.rejection->reason;
  EXPECT_TRUE(out.header.has_value());
  return out.message.value_or(LabMessage());
}

std::vector<std::string> NormalPanel() {
  return {
      StandardMsh(MshOptions().Id("MSG-NORMAL")),
      Seg("SFT", {{1, "Vendor"}, {2, "1.0"}, {3, "LIS"}}),
      Pid(),
      Seg("PV1", {{1, "1"}, {2, "O"}, {3, "LAB^^^CLINIC-A1"}, {19, "V-77"}}),
      Seg("ORC", {{1, "RE"}, {2, "PL-1^CLINIC"}, {3, "F-1^LAB"}}),
      Seg("OBR", {{1, "1"}, {4, "LYTES^Electrolytes^L"}, {7, "20261122083000"}, {25, "F"}}),
      Seg("NTE", {{1, "1"}, {3, "Fasting sample"}}),
      Seg("OBX", {{1, "1"},
                  {2, "NM"},
                  {3, "2823-3^Potassium^LN"},
                  {5, "4.1"},
                  {6, "mmol/L"},
                  {7, "3.5-5.3"},
                  {8, "N"},
                  {11, "F"},
                  {14, "20261122084500"}}),
      Obx(2, "NM", "2951-2^Sodium^LN", "149", "mmol/L^^UCUM", "137-147", "H"),
      Seg("NTE", {{1, "1"}, {3, "Repeat advised~second line"}}),
      Obx(3, "NM", "2075-0^Chloride^LN", "95", "^mmol/L", "99-110", "L"),
      Seg("ZXY", {{1, "site specific"}}),
  };
}

// --- Valid messages ------------------------------------------------------------------------------

TEST(Hl7LabParseTest, NormalPanelFieldByField) {
  const LabMessage m = ParseOk(Join(NormalPanel()));
  EXPECT_EQ(m.header.field_separator, '|');
  EXPECT_EQ(m.header.encoding_characters, "^~\\&");
  EXPECT_EQ(m.header.sending_application, "LIS");
  EXPECT_EQ(m.header.sending_facility, "CLINIC-A1");
  EXPECT_EQ(m.header.receiving_application, "RDG");
  EXPECT_EQ(m.header.receiving_facility, "COUNTY-A");
  EXPECT_EQ(m.header.message_time, "20261122083000");
  EXPECT_EQ(m.header.message_type, "ORU^R01^ORU_R01");
  EXPECT_EQ(m.header.control_id, "MSG-NORMAL");
  EXPECT_EQ(m.header.processing_id, "P");
  EXPECT_EQ(m.header.version, "2.5.1");
  EXPECT_EQ(m.header.charset, "");
  std::vector<std::string> ids;
  for (const auto& id : m.patient_identifiers) ids.push_back(id.id);
  EXPECT_THAT(ids, ElementsAre("PAT-1001", kNationalId));
  EXPECT_EQ(m.patient_id, "PAT-1001");
  EXPECT_EQ(m.patient_name, "Wang^Fang");
  EXPECT_EQ(m.birth_date, "19900307");
  EXPECT_EQ(m.sex, "F");
  EXPECT_EQ(m.patient_class, "O");
  EXPECT_EQ(m.visit_number, "V-77");
  ASSERT_EQ(m.orders.size(), 1u);
  const LabOrder& order = m.orders[0];
  EXPECT_EQ(order.placer_order_number, "PL-1^CLINIC");  // from ORC: OBR-2/3 are empty
  EXPECT_EQ(order.filler_order_number, "F-1^LAB");
  EXPECT_EQ(order.service_code, "LYTES");
  EXPECT_EQ(order.service_text, "Electrolytes");
  EXPECT_EQ(order.observed_at, "20261122083000");
  EXPECT_EQ(order.result_status, "F");
  EXPECT_THAT(order.notes, ElementsAre("Fasting sample"));
  ASSERT_EQ(order.observations.size(), 3u);
  const LabObservation& k = order.observations[0];
  EXPECT_EQ(k.set_id, 1);
  EXPECT_EQ(k.value_type, "NM");
  EXPECT_EQ(k.code, "2823-3");
  EXPECT_EQ(k.code_text, "Potassium");
  EXPECT_EQ(k.coding_system, "LN");
  EXPECT_EQ(k.sub_id, "");
  EXPECT_EQ(k.value, "4.1");
  EXPECT_EQ(k.numeric, 4.1);
  EXPECT_EQ(k.units, "mmol/L");
  EXPECT_EQ(k.reference_range, "3.5-5.3");
  EXPECT_THAT(k.abnormal_flags, ElementsAre("N"));
  EXPECT_EQ(k.result_status, "F");
  EXPECT_EQ(k.observed_at, "20261122084500");
  EXPECT_THAT(k.notes, IsEmpty());
  const LabObservation& na = order.observations[1];
  EXPECT_EQ(na.set_id, 2);
  EXPECT_EQ(na.numeric, 149.0);
  EXPECT_EQ(na.units, "mmol/L");
  EXPECT_THAT(na.abnormal_flags, ElementsAre("H"));
  EXPECT_EQ(na.observed_at, "");
  EXPECT_THAT(na.notes, ElementsAre("Repeat advised\nsecond line"));
  const LabObservation& cl = order.observations[2];
  EXPECT_EQ(cl.units, "mmol/L");  // OBX-6.2 when .1 is empty
  EXPECT_EQ(cl.value, "95");
  EXPECT_THAT(cl.abnormal_flags, ElementsAre("L"));
  EXPECT_THAT(cl.notes, IsEmpty());
}

TEST(Hl7LabParseTest, CriticalPotassium) {
  const LabMessage m = ParseOk(Join({
      StandardMsh(MshOptions().Id("MSG-CRIT")),
      Pid(),
      Obr(1, "LYTES^Electrolytes", "F-CRIT"),
      Obx(1, "NM", "2823-3^Potassium^LN", "6.8", "mmol/L", "3.5-5.3", "HH"),
      Obx(2, "NM", "2951-2^Sodium^LN", "138", "mmol/L", "137-147", "N"),
  }));
  ASSERT_EQ(m.orders.size(), 1u);
  EXPECT_EQ(m.orders[0].filler_order_number, "F-CRIT");
  ASSERT_EQ(m.orders[0].observations.size(), 2u);
  const LabObservation& k = m.orders[0].observations[0];
  EXPECT_EQ(k.code, "2823-3");
  EXPECT_EQ(k.value, "6.8");
  EXPECT_EQ(k.numeric, 6.8);
  EXPECT_EQ(k.units, "mmol/L");
  EXPECT_THAT(k.abnormal_flags, ElementsAre("HH"));
}

TEST(Hl7LabParseTest, MultipleOrdersKeepTheirObservations) {
  const LabMessage m = ParseOk(Join({
      StandardMsh(MshOptions().Id("MSG-MULTI")),
      Pid(),
      Seg("ORC", {{1, "RE"}, {2, "PL-1"}, {3, "F-MULTI-1"}}),
      Obr(1, "CBC^Blood count"),
      Obx(1, "NM", "718-7^Haemoglobin^LN", "132", "g/L", "115-150", "N"),
      Seg("ORC", {{1, "RE"}, {2, "PL-2"}, {3, "F-MULTI-2"}}),
      Obr(2, "LYTES^Electrolytes"),
      Obx(1, "NM", "2823-3^Potassium^LN", "4.1", "mmol/L"),
      Obx(2, "NM", "2951-2^Sodium^LN", "140", "mmol/L"),
      Seg("ORC", {{1, "RE"}, {2, "PL-3"}, {3, "F-MULTI-3"}}),
      Obr(3, "GLU^Glucose", "F-OWN"),  // OBR-3 wins over ORC-3
      Obx(1, "NM", "2345-7^Glucose^LN", "5.2", "mmol/L"),
  }));
  ASSERT_EQ(m.orders.size(), 3u);
  EXPECT_EQ(m.orders[0].service_code, "CBC");
  EXPECT_EQ(m.orders[0].placer_order_number, "PL-1");
  EXPECT_EQ(m.orders[0].filler_order_number, "F-MULTI-1");
  ASSERT_EQ(m.orders[0].observations.size(), 1u);
  EXPECT_EQ(m.orders[0].observations[0].code, "718-7");
  EXPECT_EQ(m.orders[1].service_text, "Electrolytes");
  EXPECT_EQ(m.orders[1].placer_order_number, "PL-2");
  EXPECT_EQ(m.orders[1].filler_order_number, "F-MULTI-2");
  ASSERT_EQ(m.orders[1].observations.size(), 2u);
  EXPECT_EQ(m.orders[1].observations[0].code, "2823-3");
  EXPECT_EQ(m.orders[1].observations[1].code, "2951-2");
  EXPECT_EQ(m.orders[2].placer_order_number, "PL-3");
  EXPECT_EQ(m.orders[2].filler_order_number, "F-OWN");
  ASSERT_EQ(m.orders[2].observations.size(), 1u);
  EXPECT_EQ(m.orders[2].observations[0].numeric, 5.2);
}

std::string Gb18030Message() {
  return Join({
      StandardMsh(MshOptions().Id("MSG-GB").Charset("GB 18030-2000").Facility(kGbTricky)),
      Pid(absl::StrCat(kGbZhangSan, kGbTricky)),
      Obr(1, absl::StrCat("LYTES^", kGbTricky)),
      Obx(1, "NM", "2823-3^Potassium^LN", "4.1", "mmol/L", "3.5-5.3", "N"),
      Seg("NTE", {{1, "1"}, {3, absl::StrCat(kGbTricky, "\\F\\")}}),
  });
}

TEST(Hl7LabParseTest, Gb18030IsConvertedBeforeSplitting) {
  const LabMessage m = ParseOk(Gb18030Message());
  EXPECT_EQ(m.header.charset, "GB 18030-2000");
  EXPECT_EQ(m.header.sending_facility, kUtf8Tricky);  // its '|' trail byte did not split MSH
  EXPECT_EQ(m.patient_name, absl::StrCat("张^三", kUtf8Tricky));
  ASSERT_EQ(m.orders.size(), 1u);
  EXPECT_EQ(m.orders[0].service_text, kUtf8Tricky);
  ASSERT_EQ(m.orders[0].observations.size(), 1u);
  EXPECT_EQ(m.orders[0].observations[0].numeric, 4.1);
  EXPECT_THAT(m.orders[0].observations[0].notes, ElementsAre(absl::StrCat(kUtf8Tricky, "|")));
}

TEST(Hl7LabParseTest, OtherDeclaredCharsets) {
  const LabMessage latin1 =
      ParseOk(Join({StandardMsh(MshOptions().Charset("8859/1")), Pid("M\xFCller^Hans"),
                    Obr(1, "CHEM"), Obx(1, "ST", "X^Note", "caf\xE9")}));
  EXPECT_EQ(latin1.patient_name, "Müller^Hans");
  EXPECT_EQ(latin1.orders[0].observations[0].value, "café");
  const LabMessage utf8 =
      ParseOk(Join({StandardMsh(MshOptions().Charset("UNICODE UTF-8")), Pid("张^三"),
                    Obr(1, "CHEM"), Obx(1, "ST", "X^Note", "é")}));
  EXPECT_EQ(utf8.patient_name, "张^三");
  // Declared ASCII (or nothing) but valid UTF-8: taken as UTF-8.
  const LabMessage ascii = ParseOk(OneValue("ST", "张三"));
  EXPECT_EQ(ascii.orders[0].observations[0].value, "张三");
  const LabMessage gbk = ParseOk(Join({StandardMsh(MshOptions().Charset("GBK")), Pid(kGbZhangSan),
                                       Obr(1, "CHEM"), Obx(1, "NM", "X", "1")}));
  EXPECT_EQ(gbk.patient_name, "张^三");
}

TEST(Hl7LabParseTest, EscapedSeparatorsAreDecodedAfterSplitting) {
  const LabMessage m = ParseOk(OneValue("ST", "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\"));
  EXPECT_EQ(m.orders[0].observations[0].value, "A|B^C&D~E\\");
}

TEST(Hl7LabParseTest, HexFormattingAndUnknownEscapes) {
  const LabMessage m =
      ParseOk(OneValue("FT", "\\H\\High\\N\\ line\\.br\\next \\X414243\\ \\Zunknown\\ C:\\dir"));
  EXPECT_EQ(m.orders[0].observations[0].value, "High line\nnext ABC \\Zunknown\\ C:\\dir");
}

TEST(Hl7LabParseTest, ANulCharacterBecomesAReplacementCharacter) {
  // Escaped or sent as is: a NUL would end the text in every C API it passes (libpq's included).
  const LabMessage m = ParseOk(OneValue("ST", std::string("a\\X00\\b\0c", 9)));
  EXPECT_EQ(m.orders[0].observations[0].value, "a\uFFFDb\uFFFDc");
}

TEST(Hl7LabParseTest, LineEndsMayBeLfCrLfOrMixed) {
  for (absl::string_view end : {"\n", "\r\n", "\n\n"}) {
    const LabMessage m = ParseOk(Join(NormalPanel(), end));
    EXPECT_EQ(m.orders[0].observations.size(), 3u);
    EXPECT_EQ(m.visit_number, "V-77");
  }
  std::vector<std::string> s = NormalPanel();
  std::string mixed = absl::StrCat(s[0], "\r\n", s[1], "\n", s[2], "\r", s[3], "\r\n\r\n");
  for (size_t i = 4; i < s.size(); ++i) absl::StrAppend(&mixed, s[i], i % 2 ? "\n" : "\r");
  EXPECT_EQ(ParseOk(mixed).orders[0].observations.size(), 3u);
}

TEST(Hl7LabParseTest, MllpFrameAndSurroundingWhitespaceAreRemoved) {
  const std::string framed = absl::StrCat("\x0b", Join(NormalPanel()), "\x1c\r");
  EXPECT_EQ(ParseOk(framed).header.control_id, "MSG-NORMAL");
  EXPECT_EQ(ParseOk(absl::StrCat("  \r\n", framed, "\n")).orders[0].observations.size(), 3u);
}

TEST(Hl7LabParseTest, StructuredNumericValues) {
  struct Case {
    std::string raw;
    std::string value;
    std::optional<double> numeric;
  };
  const std::vector<Case> cases = {
      {"<^5", "<5", std::nullopt},
      {"^3.5", "3.5", 3.5},
      {"=^7", "=7", 7.0},
      {"^1^-^5", "1-5", std::nullopt},
      {">=^100", ">=100", std::nullopt},
      {"^1^:^128", "1:128", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.raw);
    const LabObservation o = ParseOk(OneValue("SN", c.raw)).orders[0].observations[0];
    EXPECT_EQ(o.value, c.value);
    EXPECT_EQ(o.numeric, c.numeric);
  }
}

TEST(Hl7LabParseTest, CodedAndTextValues) {
  auto value = [](const std::string& type, const std::string& raw) {
    return ParseOk(OneValue(type, raw)).orders[0].observations[0];
  };
  EXPECT_EQ(value("CE", "260385009^Negative^SCT").value, "Negative (260385009)");
  EXPECT_EQ(value("CWE", "^Positive").value, "Positive");
  EXPECT_EQ(value("CWE", "POS").value, "POS");
  EXPECT_EQ(value("CWE", "^^^L-1^Local text^L").value, "Local text (L-1)");
  EXPECT_EQ(value("CE", "A^Alpha~B^Beta").value, "Alpha (A); Beta (B)");
  EXPECT_EQ(value("TX", "first~second").value, "first; second");
  const LabObservation nm = value("NM", "1~2");
  EXPECT_EQ(nm.value, "1; 2");
  EXPECT_EQ(nm.numeric, std::nullopt);  // several numbers: none is "the" value
  EXPECT_EQ(value("NM", " -.5 ").numeric, -0.5);
  EXPECT_EQ(value("NM", "").numeric, std::nullopt);
  EXPECT_EQ(value("CE", "").value, "");
}

TEST(Hl7LabParseTest, PatientIdentifiersFromPid3ThenPid2ThenPid19) {
  const LabMessage m = ParseOk(Join({
      StandardMsh(MshOptions()),
      Seg("PID", {{2, "OLD-7"},
                  {3, "A-1^^^X~~B-2"},
                  {5, "Li^Lei^^^^"},
                  {7, "199003071200"},
                  {8, "M"},
                  {19, "SSN-9"}}),
      Obr(1, "CHEM"),
      Obx(1, "NM", "X", "1"),
  }));
  std::vector<std::string> ids;
  for (const auto& id : m.patient_identifiers) {
    ids.push_back(id.id + "|" + id.issuer + "|" + id.type + "|" + id.source);
  }
  EXPECT_THAT(ids, ElementsAre("A-1|X||PID-3", "B-2|||PID-3", "OLD-7|||PID-2", "SSN-9|||PID-19"));
  EXPECT_EQ(m.patient_id_issuer, "X");
  EXPECT_EQ(m.patient_id, "A-1");
  EXPECT_EQ(m.patient_name, "Li^Lei");
  EXPECT_EQ(m.birth_date, "19900307");
  const LabMessage only_pid2 = ParseOk(Join({StandardMsh(MshOptions()), Seg("PID", {{2, "OLD-7"}}),
                                             Obr(1, "CHEM"), Obx(1, "NM", "X", "1")}));
  EXPECT_EQ(only_pid2.patient_id, "OLD-7");
}

TEST(Hl7LabParseTest, Version23IsAccepted) {
  const LabMessage m = ParseOk(OneValue("NM", "1", MshOptions().Type("ORU^R01").Version("2.3")));
  EXPECT_EQ(m.header.version, "2.3");
}

// --- Rejected messages ---------------------------------------------------------------------------

struct RejectCase {
  std::string name;
  std::string bytes;
  Hl7AckCode code;
  std::string error_code;
  std::string location;
  bool has_header;
};

std::string WithoutLastChars(const std::string& s, size_t n) { return s.substr(0, s.size() - n); }

std::vector<RejectCase> RejectCases() {
  const std::string good = Join(NormalPanel());
  std::vector<std::string> obx_first = NormalPanel();
  std::swap(obx_first[5], obx_first[7]);                            // OBX before its OBR
  std::string truncated = good.substr(0, good.rfind("\rOBX") + 3);  // ends with "\rOB"
  const std::vector<std::string> panel = NormalPanel();
  auto without = [&panel](absl::string_view name) {
    std::vector<std::string> out;
    for (const std::string& s : panel) {
      if (s.substr(0, 3) != name) out.push_back(s);
    }
    return Join(out);
  };
  auto body = [](const std::string& msh, const std::vector<std::string>& rest) {
    std::vector<std::string> all = {msh};
    all.insert(all.end(), rest.begin(), rest.end());
    return Join(all);
  };
  const std::vector<std::string> rest = {Pid(), Obr(1, "CHEM"), Obx(1, "NM", "X", "1")};
  using C = Hl7AckCode;
  return {
      {"missing MSH", good.substr(good.find('\r') + 1), C::kReject, "100", "", false},
      {"empty input", "", C::kReject, "100", "", false},
      {"wrong field separator", absl::StrReplaceAll(good, {{"MSH|^~\\&|", "MSH^|~\\&^"}}),
       C::kReject, "102", "SFT", false},
      {"alphanumeric separator", absl::StrReplaceAll(good, {{"MSH|", "MSHA"}}), C::kReject, "102",
       "MSH^1^1", false},
      {"duplicated encoding characters", absl::StrReplaceAll(good, {{"^~\\&", "^~^&"}}), C::kReject,
       "102", "MSH^1^2", false},
      {"OBX before OBR", Join(obx_first), C::kError, "100", "OBX^1", true},
      {"truncated segment name", truncated, C::kError, "100", "", true},
      {"truncated in OBX-3", WithoutLastChars(OneValue("NM", "1"), 21), C::kError, "101", "OBX^1^3",
       true},
      {"unsupported type", body(StandardMsh(MshOptions().Type("ADT^A01")), rest), C::kReject, "200",
       "MSH^1^9", true},
      {"unsupported event", body(StandardMsh(MshOptions().Type("ORU^R30")), rest), C::kReject,
       "201", "MSH^1^9", true},
      {"bad version", body(StandardMsh(MshOptions().Version("2.2")), rest), C::kReject, "203",
       "MSH^1^12", true},
      {"missing control id", body(StandardMsh(MshOptions().Id("")), rest), C::kReject, "101",
       "MSH^1^10", true},
      {"bad processing id", absl::StrReplaceAll(good, {{"|MSG-NORMAL|P|", "|MSG-NORMAL|X|"}}),
       C::kReject, "202", "MSH^1^11", true},
      {"unsupported charset", body(StandardMsh(MshOptions().Charset("KLINGON")), rest), C::kReject,
       "207", "MSH^1^18", true},
      {"bytes invalid in GB18030",
       body(StandardMsh(MshOptions().Charset("GB18030")),
            {Pid("\x81\x20"), Obr(1, "C"), Obx(1, "NM", "X", "1")}),
       C::kError, "102", "MSH^1^18", true},
      {"bytes invalid in UTF-8", OneValue("ST", "\xC3\x28"), C::kError, "102", "MSH^1^18", true},
      {"NM not a number", OneValue("NM", "4,1"), C::kError, "102", "OBX^1^5", true},
      {"MLLP frame without its end", "\x0b" + good, C::kReject, "100", "", true},
      {"broken hex escape", OneValue("ST", "a \\X4\\ b"), C::kError, "102", "OBX^1", true},
      {"non-hex escape", OneValue("ST", "\\Xzz\\"), C::kError, "102", "OBX^1", true},
      {"NM with exponent", OneValue("NM", "1e5"), C::kError, "102", "OBX^1^5", true},
      {"SN not a number", OneValue("SN", "<^five"), C::kError, "102", "OBX^1^5", true},
      {"missing PID", without("PID"), C::kError, "100", "PID", true},
      {"missing OBR", body(StandardMsh(MshOptions()), {Pid()}), C::kError, "100", "OBR", true},
      {"empty PID-3 and PID-2",
       body(StandardMsh(MshOptions()),
            {Seg("PID", {{5, "Wang^Fang"}}), Obr(1, "C"), Obx(1, "NM", "X", "1")}),
       C::kError, "101", "PID^1^3", true},
      {"empty OBR-4", body(StandardMsh(MshOptions()), {Pid(), Obr(1, ""), Obx(1, "NM", "X", "1")}),
       C::kError, "101", "OBR^1^4", true},
      {"empty OBX-2 with a value", OneValue("", "12"), C::kError, "101", "OBX^1^2", true},
      {"PID after OBR", body(StandardMsh(MshOptions()), {Pid(), Obr(1, "C"), Pid()}), C::kError,
       "100", "PID^2", true},
      {"second MSH",
       body(StandardMsh(MshOptions()), {Pid(), Obr(1, "C"), StandardMsh(MshOptions())}), C::kError,
       "100", "MSH^2", true},
      {"lower-case segment", body(StandardMsh(MshOptions()), {Pid(), "obr|1|||C"}), C::kError,
       "100", "", true},
      {"100,000 segments",
       body(StandardMsh(MshOptions()),
            [] {
              std::vector<std::string> many = {Pid(), Obr(1, "C")};
              many.resize(100000, "NTE|1||x");
              return many;
            }()),
       C::kReject, "207", "", true},
  };
}

TEST(Hl7LabRejectTest, EachMalformedMessageGetsItsCodeAndLocation) {
  for (const RejectCase& c : RejectCases()) {
    SCOPED_TRACE(c.name);
    const LabParseOutcome out = ParseLabMessage(c.bytes);
    EXPECT_FALSE(out.message.has_value());
    ASSERT_TRUE(out.rejection.has_value());
    EXPECT_EQ(Hl7AckCodeName(out.rejection->code), Hl7AckCodeName(c.code));
    EXPECT_EQ(out.rejection->error_code, c.error_code);
    EXPECT_EQ(out.rejection->location, c.location);
    EXPECT_FALSE(out.rejection->reason.empty());
    EXPECT_EQ(out.header.has_value(), c.has_header);
  }
}

TEST(Hl7LabRejectTest, ReasonsAreSpecificAndCarryNoPatientData) {
  for (const RejectCase& c : RejectCases()) {
    SCOPED_TRACE(c.name);
    const std::string reason = ParseLabMessage(c.bytes).rejection.value_or(Hl7Rejection()).reason;
    for (const char* phi : {"Wang", "Fang", "PAT-1001", kNationalId, "19900307"}) {
      EXPECT_THAT(reason, Not(HasSubstr(phi)));
    }
  }
  std::vector<std::string> obx_first = NormalPanel();
  std::swap(obx_first[5], obx_first[7]);
  EXPECT_EQ(ParseLabMessage(Join(obx_first)).rejection->reason, "OBX segment before any OBR");
  EXPECT_EQ(ParseLabMessage("PID|1").rejection->reason,
            "the message does not start with an MSH segment");
  EXPECT_THAT(
      ParseLabMessage(OneValue("NM", "1", MshOptions().Charset("KLINGON"))).rejection->reason,
      HasSubstr("unsupported character set KLINGON"));
  EXPECT_THAT(ParseLabMessage(OneValue("NM", "1", MshOptions().Type("ADT^A01"))).rejection->reason,
              HasSubstr("ADT^A01"));
}

// What was seen: "not valid in the character set MSH-18 declares" when MSH-18 was empty.
TEST(Hl7LabRejectTest, NonAsciiWithoutDeclaredCharsetSaysSo) {
  const LabParseOutcome out = ParseLabMessage(OneValue("ST", "\xC3\x28"));
  ASSERT_TRUE(out.rejection.has_value());
  EXPECT_THAT(out.rejection->reason, HasSubstr("MSH-18 declares no character set"));
}

TEST(Hl7LabRejectTest, HeaderOfARejectedMessageIsKeptForTheAck) {
  const LabParseOutcome out = ParseLabMessage(OneValue("NM", "x", MshOptions().Id("C-9")));
  ASSERT_TRUE(out.header.has_value());
  EXPECT_EQ(out.header->control_id, "C-9");
  EXPECT_EQ(out.header->sending_application, "LIS");
}

// --- ACKs ----------------------------------------------------------------------------------------

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 22, 8, 31, 5), absl::UTCTimeZone());

TEST(Hl7AckTest, AcceptInVersion251) {
  const LabParseOutcome out = ParseLabMessage(Join(NormalPanel()));
  EXPECT_EQ(BuildHl7Ack(out.header, Hl7AckCode::kAccept, nullptr, kNow, "ACK-1"),
            "MSH|^~\\&|RDG|COUNTY-A|LIS|CLINIC-A1|20261122083105+0000||ACK^R01^ACK|ACK-1|P|2.5.1\r"
            "MSA|AA|MSG-NORMAL\r");
}

TEST(Hl7AckTest, ErrorInVersion251HasErrWithLocationCodeAndSeverity) {
  const LabParseOutcome out = ParseLabMessage(OneValue("NM", "x", MshOptions().Id("C-2")));
  ASSERT_TRUE(out.rejection.has_value());
  EXPECT_EQ(BuildHl7Ack(out.header, out.rejection->code, &*out.rejection, kNow, "ACK-2"),
            "MSH|^~\\&|RDG|COUNTY-A|LIS|CLINIC-A1|20261122083105+0000||ACK^R01^ACK|ACK-2|P|2.5.1\r"
            "MSA|AE|C-2\r"
            "ERR||OBX^1^5|102^Data type error^HL70357|E||||OBX-5 does not hold a valid NM value\r");
}

TEST(Hl7AckTest, RejectInVersion23UsesMsa3AndErr1) {
  const LabParseOutcome out =
      ParseLabMessage(OneValue("NM", "x", MshOptions().Id("C-3").Type("ORU^R01").Version("2.3")));
  ASSERT_TRUE(out.rejection.has_value());
  EXPECT_EQ(BuildHl7Ack(out.header, out.rejection->code, &*out.rejection, kNow, "ACK-3"),
            "MSH|^~\\&|RDG|COUNTY-A|LIS|CLINIC-A1|20261122083105+0000||ACK^R01|ACK-3|P|2.3\r"
            "MSA|AE|C-3|OBX-5 does not hold a valid NM value\r"
            "ERR|OBX^1^5^102&Data type error&HL70357\r");
  const LabParseOutcome v24 =
      ParseLabMessage(OneValue("NM", "1", MshOptions().Type("ORU^R01").Version("2.4")));
  EXPECT_THAT(BuildHl7Ack(v24.header, Hl7AckCode::kAccept, nullptr, kNow, "A"),
              HasSubstr("|ACK^R01^ACK|A|P|2.4\rMSA|AA|MSG-1\r"));
}

TEST(Hl7AckTest, UnsupportedVersionIsAnsweredInItsOwnVersion) {
  const LabParseOutcome out = ParseLabMessage(OneValue("NM", "1", MshOptions().Version("2.2")));
  EXPECT_EQ(BuildHl7Ack(out.header, out.rejection->code, &*out.rejection, kNow, "A"),
            "MSH|^~\\&|RDG|COUNTY-A|LIS|CLINIC-A1|20261122083105+0000||ACK^R01|A|P|2.2\r"
            "MSA|AR|MSG-1|HL7 version 2.2 is not supported (2.3 to 2.5.1)\r"
            "ERR|MSH^1^12^203&Unsupported version id&HL70357\r");
}

TEST(Hl7AckTest, WithoutAReadableHeader) {
  const LabParseOutcome out = ParseLabMessage("garbage");
  ASSERT_FALSE(out.header.has_value());
  EXPECT_EQ(BuildHl7Ack(out.header, out.rejection->code, &*out.rejection, kNow, "ACK-4"),
            "MSH|^~\\&|||||20261122083105+0000||ACK^R01^ACK|ACK-4|P|2.5.1\r"
            "MSA|AR|\r"
            "ERR|||100^Segment sequence error^HL70357|E||||the message does not start with an "
            "MSH segment\r");
}

TEST(Hl7AckTest, DelimitersInTheReasonAreEscaped) {
  Hl7Header h;
  h.control_id = "C-5";
  h.version = "2.4";
  const Hl7Rejection why{Hl7AckCode::kError, "205", "MSH^1^10", "a|b^c~d\\e&f\ng"};
  EXPECT_THAT(BuildHl7Ack(h, Hl7AckCode::kError, &why, kNow, "A|B"),
              HasSubstr("|A\\F\\B|P|2.4\rMSA|AE|C-5|a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\.br\\g\r"
                        "ERR|MSH^1^10^205&Duplicate key identifier&HL70357\r"));
}

TEST(Hl7AckTest, EchoesProcessingIdEventAndCharset) {
  const LabParseOutcome out = ParseLabMessage(Join({Msh({{3, "LIS"},
                                                         {5, "RDG"},
                                                         {9, "ORU^R01"},
                                                         {10, "C-6"},
                                                         {11, "T"},
                                                         {12, "2.5"},
                                                         {18, "UNICODE UTF-8"}}),
                                                    Pid(), Obr(1, "C"), Obx(1, "NM", "X", "1")}));
  EXPECT_EQ(BuildHl7Ack(out.header, Hl7AckCode::kAccept, nullptr, kNow, "A"),
            "MSH|^~\\&|RDG||LIS||20261122083105+0000||ACK^R01^ACK|A|T|2.5||||||UNICODE UTF-8\r"
            "MSA|AA|C-6\r");
}

TEST(Hl7AckTest, Gb18030AckIsEncodedBackToGb18030) {
  const LabParseOutcome out = ParseLabMessage(Gb18030Message());
  ASSERT_TRUE(out.message.has_value());
  EXPECT_EQ(BuildHl7Ack(out.header, Hl7AckCode::kAccept, nullptr, kNow, "A"),
            absl::StrCat("MSH|^~\\&|RDG|COUNTY-A|LIS|", kGbTricky,
                         "|20261122083105+0000||ACK^R01^ACK|A|P|2.5.1||||||GB 18030-2000\r"
                         "MSA|AA|MSG-GB\r"));
}

// --- Splitting files into messages ---------------------------------------------------------------

std::vector<std::string> ThreeMessages() {
  return {OneValue("NM", "1", MshOptions().Id("M-1")), OneValue("NM", "2", MshOptions().Id("M-2")),
          OneValue("NM", "3", MshOptions().Id("M-3"))};
}

std::vector<std::string> ControlIds(const std::vector<std::string>& messages) {
  std::vector<std::string> ids;
  for (const std::string& m : messages) {
    LabParseOutcome out = ParseLabMessage(m);
    ids.push_back(out.message.has_value() ? out.header->control_id : "rejected");
  }
  return ids;
}

TEST(Hl7SplitTest, ConcatenatedWithCarriageReturns) {
  const std::vector<std::string> three = ThreeMessages();
  const std::vector<std::string> parts = SplitHl7Messages(absl::StrJoin(three, ""));
  EXPECT_EQ(parts, three);
  EXPECT_THAT(ControlIds(parts), ElementsAre("M-1", "M-2", "M-3"));
}

TEST(Hl7SplitTest, ConcatenatedWithLineFeedsAndBlankLines) {
  std::string data;
  for (const std::string& m : ThreeMessages()) {
    absl::StrAppend(&data, absl::StrReplaceAll(m, {{"\r", "\n"}}), "\n\r\n  \n");
  }
  const std::vector<std::string> parts = SplitHl7Messages(data);
  EXPECT_EQ(parts.size(), 3u);
  EXPECT_THAT(ControlIds(parts), ElementsAre("M-1", "M-2", "M-3"));
}

TEST(Hl7SplitTest, MllpFramesIncludingATruncatedOne) {
  const std::vector<std::string> three = ThreeMessages();
  const std::string data =
      absl::StrCat("\x0b", three[0], "\x1c\r\n", "\x0b", WithoutLastChars(three[1], 25), "\x1c\r",
                   "\x0b\x1c\r", "\x0b", three[2], "\x1c\r");
  const std::vector<std::string> parts = SplitHl7Messages(data);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], three[0]);
  EXPECT_EQ(parts[2], three[2]);
  EXPECT_THAT(ControlIds(parts), ElementsAre("M-1", "rejected", "M-3"));
}

// What was seen: a frame that never ends (a cut transmission) passed for a whole message.
TEST(Hl7SplitTest, AFrameWithoutItsEndIsOnePieceTheParserRefuses) {
  const std::vector<std::string> three = ThreeMessages();
  const std::string data =
      absl::StrCat("\x0b", three[0], "\x1c\r", "\x0b", three[1], "\x0b", three[2], "\x1c\r");
  const std::vector<std::string> parts = SplitHl7Messages(data);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "\x0b" + three[1]);
  EXPECT_THAT(ControlIds(parts), ElementsAre("M-1", "rejected", "M-3"));
  EXPECT_THAT(ParseLabMessage(parts[1]).rejection->reason, HasSubstr("no end block"));
  EXPECT_THAT(SplitHl7Messages("\x0b" + three[0]), ElementsAre("\x0b" + three[0]));
}

TEST(Hl7SplitTest, TextBeforeTheFirstMshIsItsOwnPieceAndBlanksAreDropped) {
  EXPECT_THAT(SplitHl7Messages(""), IsEmpty());
  EXPECT_THAT(SplitHl7Messages(" \r\n\n "), IsEmpty());
  const std::string m = OneValue("NM", "1");
  EXPECT_THAT(SplitHl7Messages(absl::StrCat("junk\r", m)), ElementsAre("junk\r", m));
  // "MSH" inside a line, or as the start of a longer name, does not start a message.
  const std::string inner = absl::StrCat(m, "NTE|1||MSH|x\rMSHX|1\r");
  EXPECT_THAT(SplitHl7Messages(inner), ElementsAre(inner));
}

TEST(Hl7SplitTest, BatchEnvelopeIsDroppedFramedOrNot) {
  const std::vector<std::string> three = ThreeMessages();
  const std::string batch = absl::StrCat("FHS|^~\\&|LIS\rBHS|^~\\&|LIS\r", three[0], three[1],
                                         "BTS|2\r", "BHS|^~\\&|LIS\r", three[2], "BTS|1\rFTS|2\r");
  EXPECT_EQ(SplitHl7Messages(batch), three);
  EXPECT_EQ(SplitHl7Messages(absl::StrCat("\x0b", batch, "\x1c\r")), three);
  // A segment whose name only starts with an envelope name stays in its message.
  const std::string z = absl::StrCat(three[0], "BTSX|1\r");
  EXPECT_THAT(SplitHl7Messages(z), ElementsAre(z));
}

}  // namespace
}  // namespace rdg::formats
