#include "clients/reader/ecg_render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "storage/formats/dicom_parser.h"
#include "storage/formats/ecg_waveform.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::clients {
namespace {

using formats::EcgGroup;
using formats::EcgLead;
using formats::EcgRecording;
using formats::InitDicomToolkit;
using formats::ParseEcgWaveformFile;

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kLeads[] = {"I",  "II", "III", "aVR", "aVL", "aVF",
                                  "V1", "V2", "V3",  "V4",  "V5",  "V6"};

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

//! The contents of the element that starts with `open` (up to the next "</g>").
std::string Group(const std::string& svg, const std::string& open) {
  const size_t begin = svg.find(open);
  if (begin == std::string::npos) return {};
  return svg.substr(begin, svg.find("</g>", begin) - begin);
}

//! The (x, y) points of the first trace path in `fragment`.
std::vector<std::pair<double, double>> TracePoints(const std::string& fragment) {
  std::vector<std::pair<double, double>> points;
  const size_t at = fragment.find("class=\"trace\" d=\"");
  if (at == std::string::npos) return points;
  const size_t begin = at + 17;
  const std::string d = fragment.substr(begin, fragment.find('"', begin) - begin);
  static const std::regex kPoint(R"((-?[0-9.]+) (-?[0-9.]+))");
  for (auto it = std::sregex_iterator(d.begin(), d.end(), kPoint); it != std::sregex_iterator();
       ++it) {
    points.emplace_back(std::stod((*it)[1]), std::stod((*it)[2]));
  }
  return points;
}

uint32_t BigEndian32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

class EcgRenderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(InitDicomToolkit().ok());
    absl::StatusOr<EcgRecording> r =
        ParseEcgWaveformFile(std::string(RDG_PYDICOM_FILES) + "/waveform_ecg.dcm");
    ASSERT_TRUE(r.ok()) << r.status();
    recording_ = new EcgRecording(*std::move(r));
  }
  static void TearDownTestSuite() {
    delete recording_;
    recording_ = nullptr;
  }

  //! True when Python's XML parser accepts `svg`.
  bool IsWellFormedXml(const std::string& svg) {
    const std::string path = dir_.Write("tracing.svg", svg);
    const std::string command =
        "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' " +
        path;
    return std::system(command.c_str()) == 0;
  }

  static EcgRecording* recording_;
  testing::TempDir dir_;
};

EcgRecording* EcgRenderTest::recording_ = nullptr;

TEST_F(EcgRenderTest, SvgHasStandardTwelveLeadLayout) {
  const std::string svg = RenderEcgSvg(*recording_);
  EXPECT_EQ(Count(svg, "class=\"lead\""), 12u);
  for (const char* lead : kLeads) {
    const std::string open = std::string("<g class=\"lead\" id=\"lead-") + lead + "\">";
    EXPECT_EQ(Count(svg, open), 1u) << lead;
    const std::string panel = Group(svg, open);
    EXPECT_THAT(panel, HasSubstr(std::string("class=\"lead-label\"")));
    EXPECT_THAT(panel, HasSubstr(std::string(">") + lead + "</text>"));
    EXPECT_THAT(panel, HasSubstr("class=\"trace\"")) << lead;
  }
  EXPECT_EQ(Count(svg, "<g class=\"rhythm\" id=\"rhythm-II\">"), 1u);
  EXPECT_EQ(Count(svg, "class=\"lead-label\""), 13u);
  EXPECT_EQ(Count(svg, "class=\"trace\""), 13u);
  EXPECT_EQ(Count(svg, "class=\"calibration\""), 4u);
  EXPECT_EQ(Count(svg, "<g id=\"grid\">"), 1u);
  EXPECT_GT(Count(svg, "class=\"grid-minor\""), 100u);
  EXPECT_GT(Count(svg, "class=\"grid-major\""), 20u);
  EXPECT_THAT(svg, HasSubstr("#f4c7c7"));
  EXPECT_THAT(svg, HasSubstr("#e08a8a"));
  EXPECT_THAT(svg, HasSubstr("25 mm/s  10 mm/mV"));
  EXPECT_LT(svg.size(), 1'500'000u);
  EXPECT_TRUE(IsWellFormedXml(svg));
}

TEST_F(EcgRenderTest, TracesStayInTheirPanels) {
  const std::string svg = RenderEcgSvg(*recording_);
  // Lead I: row 0 (y 27..67 mm), column 0 (x 15..77.5 mm). V6: row 2, column 3.
  const auto lead_i = TracePoints(Group(svg, "id=\"lead-I\""));
  const auto lead_v6 = TracePoints(Group(svg, "id=\"lead-V6\""));
  const auto rhythm = TracePoints(Group(svg, "id=\"rhythm-II\""));
  ASSERT_GT(lead_i.size(), 1000u);
  ASSERT_GT(rhythm.size(), 4000u);
  for (const auto& [x, y] : lead_i) {
    ASSERT_TRUE(x >= 15 && x <= 77.5 && y >= 27 && y <= 67) << x << "," << y;
  }
  for (const auto& [x, y] : lead_v6) {
    ASSERT_TRUE(x >= 202.5 && x <= 265 && y >= 107 && y <= 147) << x << "," << y;
  }
  for (const auto& [x, y] : rhythm) {
    ASSERT_TRUE(x >= 15 && x <= 265 && y >= 147 && y <= 187) << x << "," << y;
  }
  EXPECT_GT(rhythm.back().first, 264);  // the strip spans the full 10 s
}

TEST_F(EcgRenderTest, ScalesTenMillimetresPerMillivolt) {
  EcgRecording r;
  r.groups.push_back(EcgGroup{"RHYTHM", 500, {EcgLead{"I", std::vector<float>(5000, 1000.0f)}}});
  const std::string svg = RenderEcgSvg(r);
  const auto points = TracePoints(Group(svg, "id=\"lead-I\""));
  ASSERT_FALSE(points.empty());
  EXPECT_DOUBLE_EQ(points.front().first, 15.0);                 // t = 0 at the left of the traces
  for (const auto& [x, y] : points) ASSERT_DOUBLE_EQ(y, 37.0);  // baseline 47 mm, 1 mV up
  // 12 panels, only lead I drawn; the other leads are labelled empty panels.
  EXPECT_EQ(Count(svg, "class=\"lead\""), 12u);
  EXPECT_EQ(Count(svg, "class=\"trace\""), 1u);
  EXPECT_THAT(Group(svg, "id=\"lead-V3\""), HasSubstr(">V3</text>"));
  EXPECT_THAT(Group(svg, "id=\"lead-V3\""), Not(HasSubstr("class=\"trace\"")));
}

TEST_F(EcgRenderTest, EmptyRecordingRendersEmptyPanels) {
  const std::string svg = RenderEcgSvg(EcgRecording{});
  EXPECT_EQ(Count(svg, "class=\"lead\""), 12u);
  EXPECT_EQ(Count(svg, "class=\"trace\""), 0u);
  EXPECT_EQ(Count(svg, "id=\"rhythm-II\""), 1u);
  EXPECT_TRUE(IsWellFormedXml(svg));
}

TEST_F(EcgRenderTest, HostileValuesStayBoundedAndWellFormed) {
  const float kInf = std::numeric_limits<float>::infinity();
  const float kNan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> odd = {0, kNan, 5000, -kInf, kInf, 1e30f, -1e30f, 100};
  for (double hz : {1e9, 1e-9, 0.0, -5.0, std::nan(""), 3.0, 100000.0}) {
    EcgRecording r;
    r.rhythm_group = 0;
    EcgGroup group{"", hz, {}};
    for (const char* lead : kLeads) group.leads.push_back(EcgLead{lead, odd});
    group.leads.push_back(EcgLead{"II", std::vector<float>(2'000'000, 1.0f)});  // duplicate
    r.groups.push_back(group);
    const std::string svg = RenderEcgSvg(r);
    EXPECT_LT(svg.size(), 1'500'000u) << hz;
    EXPECT_THAT(svg, Not(HasSubstr("nan"))) << hz;
    EXPECT_THAT(svg, Not(HasSubstr("inf"))) << hz;
    for (const auto& [x, y] : TracePoints(Group(svg, "id=\"rhythm-II\""))) {
      ASSERT_TRUE(x >= 15 && x <= 265 && y >= 147 && y <= 187) << hz << ": " << x << "," << y;
    }
  }
  EcgRecording out_of_range;
  out_of_range.rhythm_group = 7;
  EXPECT_EQ(Count(RenderEcgSvg(out_of_range), "class=\"trace\""), 0u);
}

//! The text of the header line <text id="ID">, tags removed.
std::string HeaderLine(const std::string& svg, const std::string& id) {
  const size_t open = svg.find("<text id=\"" + id + "\"");
  if (open == std::string::npos) return "<no line " + id + ">";
  const size_t end = svg.find("</text>", open);
  const std::string body = svg.substr(svg.find('>', open) + 1, end - svg.find('>', open) - 1);
  return std::regex_replace(body, std::regex("<[^>]*>"), "");
}

TEST_F(EcgRenderTest, HeaderCarriesPatientRecordingAndMeasurements) {
  const std::string svg = RenderEcgSvg(*recording_);
  EXPECT_EQ(HeaderLine(svg, "patient"), "Anonymous   ID 642341  女  42岁  出生 1971-01-23");
  EXPECT_EQ(HeaderLine(svg, "recording"),
            "记录时间 2013-01-25 10:59:19  E. O. Ospedali Galliera  设备 Mortara Instrument, "
            "Inc. el250");
  EXPECT_EQ(HeaderLine(svg, "measurements"),
            "HR 61 bpm (由RR间期)  PR 161 ms  QRS 75 ms  QT/QTc 368/370 ms  P/QRS/T 74/52/57°");
  EXPECT_EQ(HeaderLine(svg, "legend"), "25 mm/s  10 mm/mV  0.05–300 Hz");
  EXPECT_EQ(HeaderLine(svg, "statements"), "自动分析 (未经医师确认): RITMO SINUSALE; ECG NORMALE");
  EXPECT_THAT(svg, HasSubstr("Noto Sans CJK SC"));
}

TEST_F(EcgRenderTest, TwoPatientsNeverShareAPrintout) {
  EcgRecording other = *recording_;
  other.details.patient_name = "王芳";
  other.details.patient_id = "HB-0001";
  other.details.recorded_at = "20261129130108+0800";
  other.details.measurements = {};
  const std::string svg = RenderEcgSvg(other);
  EXPECT_NE(svg, RenderEcgSvg(*recording_));
  EXPECT_THAT(HeaderLine(svg, "patient"), HasSubstr("王芳   ID HB-0001"));
  EXPECT_THAT(HeaderLine(svg, "recording"), HasSubstr("记录时间 2026-11-29 13:01:08 +08:00"));
  EXPECT_EQ(HeaderLine(svg, "measurements"), "");
  EXPECT_TRUE(IsWellFormedXml(svg));
}

TEST_F(EcgRenderTest, EscapesAndBoundsHeaderText) {
  EcgRecording r = *recording_;
  r.details.patient_name = "Dr. <Smith> & \"Jones\" \x01 \xff\xfe";
  r.details.institution = std::string(5000, 'x');
  r.details.measurements.statements = {"</text><script>alert(1)</script>"};
  const std::string svg = RenderEcgSvg(r);
  EXPECT_THAT(svg, HasSubstr("Dr. &lt;Smith&gt; &amp; &quot;Jones&quot;"));
  EXPECT_THAT(svg, Not(HasSubstr("<Smith>")));
  EXPECT_THAT(svg, Not(HasSubstr("<script>")));
  EXPECT_THAT(svg, Not(HasSubstr(std::string(200, 'x'))));  // cut to the line's width
  EXPECT_TRUE(IsWellFormedXml(svg));
}

TEST_F(EcgRenderTest, PngMatchesPaperSize) {
  for (double ppm : {8.0, 3.0}) {
    EcgRenderOptions options;
    options.png_pixels_per_mm = ppm;
    absl::StatusOr<std::string> png = RenderEcgPng(*recording_, options);
    ASSERT_TRUE(png.ok()) << png.status();
    ASSERT_GT(png->size(), 33u);
    EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    EXPECT_EQ(png->substr(12, 4), "IHDR");
    EXPECT_EQ(BigEndian32(*png, 16), std::lround(EcgPaper().width_mm * ppm));
    EXPECT_EQ(BigEndian32(*png, 20), std::lround(EcgPaper().height_mm * ppm));
  }
}

TEST_F(EcgRenderTest, PngRejectsUnusableResolution) {
  for (double ppm : {0.0, -1.0, 1e9, std::nan("")}) {
    EcgRenderOptions options;
    options.png_pixels_per_mm = ppm;
    EXPECT_TRUE(absl::IsInvalidArgument(RenderEcgPng(*recording_, options).status())) << ppm;
  }
}

TEST_F(EcgRenderTest, PaperFitsFourColumnsAtTwentyFiveMmPerSecond) {
  const EcgPaperSize paper = EcgPaper();
  EXPECT_GE(paper.width_mm, 250 + 10);
  EXPECT_GE(paper.height_mm, 4 * 40);
  EXPECT_LE(paper.width_mm, 297);  // landscape A4
  EXPECT_LE(paper.height_mm, 210);
}

}  // namespace
}  // namespace rdg::clients
