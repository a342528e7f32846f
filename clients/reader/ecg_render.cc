#include "clients/reader/ecg_render.h"

#include <cairo.h>
#include <librsvg/rsvg.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "storage/formats/text.h"

namespace rdg::clients {
namespace {

using formats::AgeForDisplay;
using formats::AppendUtf8;
using formats::DateForDisplay;
using formats::DisplayWidth;
using formats::EcgDetails;
using formats::EcgGroup;
using formats::EcgLead;
using formats::EcgMeasurements;
using formats::EcgRecording;
using formats::FindLead;
using formats::NextCodePoint;
using formats::SexForDisplay;
using formats::TruncateToWidth;
using formats::XmlEscape;

// Paper layout, all in millimetres. The grid spans the calibration column and the traces.
constexpr double kMarginMm = 5;        //!< white border left, right and below the grid
constexpr double kHeaderMm = 27;       //!< patient, recording and measurement lines above the grid
constexpr double kCalibrationMm = 10;  //!< room left of the traces for the 1 mV pulse
constexpr double kPaperSpeedMmPerS = 25;
constexpr double kGainMmPerMv = 10;
constexpr double kColumnSeconds = 2.5;
constexpr int kColumns = 4;
constexpr int kLeadRows = 3;
constexpr double kRowMm = 40;  //!< ±2 mV around the row's baseline
constexpr double kColumnMm = kColumnSeconds * kPaperSpeedMmPerS;  // 62.5
constexpr double kTracesMm = kColumns * kColumnMm;                // 250
constexpr double kGridLeft = kMarginMm;
constexpr double kGridTop = kHeaderMm;
constexpr double kGridWidth = kCalibrationMm + kTracesMm;  // 260 = 52 large squares
constexpr double kGridHeight = (kLeadRows + 1) * kRowMm;   // 160 = 32 large squares
constexpr double kTraceLeft = kGridLeft + kCalibrationMm;
//! Horizontal bucket for min/max decimation: well under one pixel at 8 px/mm.
constexpr double kBucketMm = 0.1;
constexpr double kMaxPixelsPerMm = 40;  //!< ~1000 dpi; bounds the PNG surface (~11000 px wide)

//! Chinese names need a CJK font (Debian's fonts-noto-cjk); DejaVu for the rest.
constexpr absl::string_view kFont = "Noto Sans CJK SC, WenQuanYi Zen Hei, DejaVu Sans, sans-serif";
//! Display columns (see DisplayWidth) each header line may use: wider text is cut with "…".
constexpr int kPatientColumns = 78;  //!< the patient line, left of the legend
constexpr int kNameColumns = 40;
constexpr int kLineColumns = 130;

//! Standard 12-lead layout: kLayout[column][row].
constexpr std::array<std::array<absl::string_view, kLeadRows>, kColumns> kLayout = {
    {{"I", "II", "III"}, {"aVR", "aVL", "aVF"}, {"V1", "V2", "V3"}, {"V4", "V5", "V6"}}};
constexpr absl::string_view kRhythmLead = "II";

void AppendLine(std::string& out, absl::string_view cls, absl::string_view stroke, double width,
                double x1, double y1, double x2, double y2) {
  absl::StrAppendFormat(&out,
                        "<line class=\"%s\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                        "stroke=\"%s\" stroke-width=\"%.2f\"/>\n",
                        cls, x1, y1, x2, y2, stroke, width);
}

//! The millimetre grid: minor lines every 1 mm, major lines every 5 mm drawn over them.
void AppendGrid(std::string& out) {
  out += "<g id=\"grid\">\n";
  for (bool major : {false, true}) {
    const absl::string_view cls = major ? "grid-major" : "grid-minor";
    const absl::string_view stroke = major ? "#e08a8a" : "#f4c7c7";
    const double width = major ? 0.25 : 0.1;
    for (int mm = 0; mm <= static_cast<int>(kGridWidth); ++mm) {
      if ((mm % 5 == 0) != major) continue;
      AppendLine(out, cls, stroke, width, kGridLeft + mm, kGridTop, kGridLeft + mm,
                 kGridTop + kGridHeight);
    }
    for (int mm = 0; mm <= static_cast<int>(kGridHeight); ++mm) {
      if ((mm % 5 == 0) != major) continue;
      AppendLine(out, cls, stroke, width, kGridLeft, kGridTop + mm, kGridLeft + kGridWidth,
                 kGridTop + mm);
    }
  }
  out += "</g>\n";
}

//! The 1 mV × 0.2 s calibration pulse in the margin left of a row's traces.
void AppendCalibration(std::string& out, double baseline) {
  const double x = kGridLeft + 1;
  const double top = baseline - kGainMmPerMv;
  absl::StrAppendFormat(&out,
                        "<path class=\"calibration\" d=\"M%.2f %.2f H%.2f V%.2f H%.2f V%.2f "
                        "H%.2f\" fill=\"none\" stroke=\"#000000\" stroke-width=\"0.3\" "
                        "stroke-linejoin=\"miter\"/>\n",
                        x, baseline, x + 2, top, x + 2 + 0.2 * kPaperSpeedMmPerS, baseline,
                        kTraceLeft);
}

//! Where one trace goes on the paper.
struct TraceBox {
  double left_mm;   //!< x of the first sample drawn
  double baseline;  //!< y of 0 mV
  double top;       //!< trace is clipped to [top, bottom]
  double bottom;
  double start_s;  //!< recording time drawn at left_mm
  double end_s;
};

//! Appends the trace path of `uv` within `box`. Each kBucketMm slice of paper keeps at most its
//! minimum and maximum sample (in time order), which bounds the SVG size at any sampling rate
//! without losing peaks. Non-finite values break the line.
//! The sample index at time t (seconds), rounded up or down, clamped to [0, n].
size_t SampleAt(double t, double hz, size_t n, bool round_up) {
  const double v = round_up ? std::ceil(t * hz) : std::floor(t * hz);
  if (!(v > 0)) return 0;
  return v >= static_cast<double>(n) ? n : static_cast<size_t>(v);
}

//! Appends the trace path of `uv` within `box`. Each kBucketMm slice of paper keeps at most its
//! minimum and maximum sample (in time order), which bounds the SVG size at any sampling rate
//! without losing peaks. Non-finite values break the line.
void AppendTrace(std::string& out, const std::vector<float>& uv, double hz, const TraceBox& box) {
  const size_t first = SampleAt(box.start_s, hz, uv.size(), true);
  const size_t end = SampleAt(box.end_s, hz, uv.size(), false);
  std::string d;
  bool pen_down = false;
  auto point = [&](size_t s) {
    if (!std::isfinite(uv[s])) {
      pen_down = false;
      return;
    }
    const double x = box.left_mm + (s / hz - box.start_s) * kPaperSpeedMmPerS;
    const double y = std::clamp(box.baseline - uv[s] / 1000.0 * kGainMmPerMv, box.top, box.bottom);
    absl::StrAppendFormat(&d, "%s%.2f %.2f", pen_down ? " " : (d.empty() ? "M" : " M"), x, y);
    pen_down = true;
  };
  const double per_bucket = hz * kBucketMm / kPaperSpeedMmPerS;
  if (per_bucket <= 2) {
    for (size_t s = first; s < end; ++s) point(s);
  }
  for (double b = 0; per_bucket > 2 && first + b * per_bucket < end; ++b) {
    const auto lo = static_cast<size_t>(first + b * per_bucket);
    const auto hi = static_cast<size_t>(std::min<double>(end, first + (b + 1) * per_bucket));
    size_t min_i = lo, max_i = lo;
    for (size_t s = lo + 1; s < hi; ++s) {  // a non-finite extreme gives way to any finite value
      if (uv[s] < uv[min_i] || !std::isfinite(uv[min_i])) min_i = s;
      if (uv[s] > uv[max_i] || !std::isfinite(uv[max_i])) max_i = s;
    }
    point(std::min(min_i, max_i));
    if (min_i != max_i) point(std::max(min_i, max_i));
  }
  if (d.empty()) return;
  absl::StrAppend(&out, "<path class=\"trace\" d=\"", d,
                  "\" fill=\"none\" stroke=\"#000000\" stroke-width=\"0.3\" "
                  "stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n");
}

void AppendLabel(std::string& out, absl::string_view text, double x, double y) {
  absl::StrAppendFormat(&out,
                        "<text class=\"lead-label\" x=\"%.2f\" y=\"%.2f\" font-family=\"%s\" "
                        "font-size=\"3.5\" fill=\"#000000\">%s</text>\n",
                        x, y, kFont, XmlEscape(text));
}

//! The drawable group, or nullptr when the recording has none (then panels stay empty).
const EcgGroup* DrawnGroup(const EcgRecording& recording) {
  if (recording.rhythm_group >= recording.groups.size()) return nullptr;
  const EcgGroup& group = recording.groups[recording.rhythm_group];
  const double hz = group.sampling_frequency_hz;
  return std::isfinite(hz) && hz > 0 ? &group : nullptr;
}

double RowTop(int row) { return kGridTop + row * kRowMm; }

TraceBox RowBox(int row, double left_mm, double start_s, double seconds) {
  const double top = RowTop(row);
  return TraceBox{left_mm, top + kRowMm / 2, top + 0.5, top + kRowMm - 0.5,
                  start_s, start_s + seconds};
}

//! One 2.5 s panel of the 3×4 layout. Each column shows its own time slice; a recording shorter
//! than 10 s shows its last 2.5 s in the columns past its end.
void AppendLeadPanel(std::string& out, const EcgGroup* group, int column, int row) {
  const absl::string_view name = kLayout[column][row];
  const double left = kTraceLeft + column * kColumnMm;
  absl::StrAppend(&out, "<g class=\"lead\" id=\"lead-", name, "\">\n");
  AppendLabel(out, name, left + 1.5, RowTop(row) + 5);
  if (const EcgLead* lead = group != nullptr ? FindLead(*group, name) : nullptr) {
    const double hz = group->sampling_frequency_hz;
    const double duration = lead->microvolts.size() / hz;
    double start = column * kColumnSeconds;
    if (start + kColumnSeconds > duration) start = std::max(0.0, duration - kColumnSeconds);
    AppendTrace(out, lead->microvolts, hz, RowBox(row, left, start, kColumnSeconds));
  }
  out += "</g>\n";
  if (column > 0) {  // short bar marking the change of lead, as on printed ECGs
    const double baseline = RowTop(row) + kRowMm / 2;
    AppendLine(out, "lead-separator", "#000000", 0.3, left, baseline - 3, left, baseline + 3);
  }
}

void AppendRhythmStrip(std::string& out, const EcgGroup* group) {
  const int row = kLeadRows;
  absl::StrAppend(&out, "<g class=\"rhythm\" id=\"rhythm-", kRhythmLead, "\">\n");
  AppendLabel(out, kRhythmLead, kTraceLeft + 1.5, RowTop(row) + 5);
  if (const EcgLead* lead = group != nullptr ? FindLead(*group, kRhythmLead) : nullptr) {
    AppendTrace(out, lead->microvolts, group->sampling_frequency_hz,
                RowBox(row, kTraceLeft, 0, kColumns * kColumnSeconds));
  }
  out += "</g>\n";
}

//! A DICOM DT ("20130125105919.123+0800") as the cart wrote it: "2013-01-25 10:59:19 +08:00".
//! The time is the cart's local time; an offset is shown only when the object gives one.
std::string DateTimeForDisplay(absl::string_view dt) {
  absl::string_view offset;
  if (const size_t sign = dt.find_first_of("+-"); sign != absl::string_view::npos) {
    offset = dt.substr(sign);
    dt = dt.substr(0, sign);
  }
  if (const size_t dot = dt.find('.'); dot != absl::string_view::npos) dt = dt.substr(0, dot);
  if (dt.size() < 8 || !std::all_of(dt.begin(), dt.end(), absl::ascii_isdigit)) {
    return absl::StrCat(dt, offset);
  }
  std::string out = DateForDisplay(dt);
  for (size_t i = 8; i + 2 <= dt.size() && i < 14; i += 2) {
    absl::StrAppend(&out, i == 8 ? " " : ":", dt.substr(i, 2));
  }
  if (offset.size() == 5) absl::StrAppend(&out, " ", offset.substr(0, 3), ":", offset.substr(3));
  return out;
}

//! Joins the non-empty parts with two spaces.
std::string Joined(std::initializer_list<std::string> parts) {
  std::string out;
  for (const std::string& part : parts) {
    if (part.empty()) continue;
    absl::StrAppend(&out, out.empty() ? "" : "  ", part);
  }
  return out;
}

std::string Rounded(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.0f", *v) : std::string("-");
}

//! "HR 61 bpm  PR 161 ms  QRS 75 ms  QT/QTc 368/370 ms  P/QRS/T 74/52/57°" with the parts the
//! recording has; "" when it has none.
std::string MeasurementLine(const EcgMeasurements& m) {
  std::string hr;
  if (m.heart_rate_bpm) {
    hr = absl::StrFormat("HR %.0f bpm", *m.heart_rate_bpm);
    if (m.heart_rate_source == "RR") absl::StrAppend(&hr, " (由RR间期)");
    if (m.heart_rate_source == "computed") absl::StrAppend(&hr, " (II导联计算)");
  }
  const bool qt = m.qt_ms || m.qtc_ms;
  const bool axes = m.p_axis_deg || m.qrs_axis_deg || m.t_axis_deg;
  return Joined({hr, m.pr_ms ? absl::StrFormat("PR %.0f ms", *m.pr_ms) : "",
                 m.qrs_ms ? absl::StrFormat("QRS %.0f ms", *m.qrs_ms) : "",
                 qt ? absl::StrCat("QT/QTc ", Rounded(m.qt_ms), "/", Rounded(m.qtc_ms), " ms") : "",
                 axes ? absl::StrCat("P/QRS/T ", Rounded(m.p_axis_deg), "/",
                                     Rounded(m.qrs_axis_deg), "/", Rounded(m.t_axis_deg), "\u00B0")
                      : ""});
}

//! Paper speed, gain and the filters of the recording.
std::string LegendLine(const EcgDetails& d) {
  std::string filters;
  if (d.filter_low_hz > 0 || d.filter_high_hz > 0) {
    filters =
        absl::StrCat(d.filter_low_hz > 0 ? absl::StrFormat("%g", d.filter_low_hz) : "", "\u2013",
                     d.filter_high_hz > 0 ? absl::StrFormat("%g", d.filter_high_hz) : "", " Hz");
  }
  return Joined({"25 mm/s", "10 mm/mV", filters,
                 d.notch_hz > 0 ? absl::StrFormat("notch %g Hz", d.notch_hz) : ""});
}

void AppendText(std::string& out, absl::string_view id, double x, double y, double size,
                absl::string_view body, absl::string_view extra = "") {
  absl::StrAppendFormat(&out,
                        "<text id=\"%s\" x=\"%.2f\" y=\"%.2f\" font-family=\"%s\" "
                        "font-size=\"%.1f\" fill=\"#000000\" xml:space=\"preserve\"%s>%s</text>\n",
                        id, x, y, kFont, size, extra, body);
}

//! The lines above the grid: the patient (name in bold, ID, sex, age, birth date) with paper
//! speed, gain and filters at the right; the recording time, institution and device; the
//! cart's measurements; its own statements, marked as unconfirmed.
void AppendHeader(std::string& out, const EcgRecording& recording) {
  const EcgPaperSize paper = EcgPaper();
  absl::StrAppendFormat(&out,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                        "width=\"%.0fmm\" height=\"%.0fmm\" viewBox=\"0 0 %.0f %.0f\">\n"
                        "<rect id=\"background\" x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                        "fill=\"#ffffff\"/>\n",
                        paper.width_mm, paper.height_mm, paper.width_mm, paper.height_mm,
                        paper.width_mm, paper.height_mm);
  const EcgDetails& d = recording.details;
  const std::string name = TruncateToWidth(d.patient_name, kNameColumns);
  const std::string info = TruncateToWidth(
      Joined({d.patient_id.empty() ? "" : absl::StrCat("ID ", d.patient_id), SexForDisplay(d.sex),
              AgeForDisplay(d.age),
              d.birth_date.empty() ? "" : absl::StrCat("出生 ", DateForDisplay(d.birth_date))}),
      kPatientColumns - DisplayWidth(name));
  AppendText(out, "patient", kGridLeft, 6.5, 4.2,
             absl::StrCat("<tspan class=\"patient-name\" font-weight=\"bold\">", XmlEscape(name),
                          "</tspan><tspan class=\"patient-ids\">", name.empty() ? "" : "   ",
                          XmlEscape(info), "</tspan>"));
  AppendText(out, "legend", kGridLeft + kGridWidth, 6.5, 3, XmlEscape(LegendLine(d)),
             " text-anchor=\"end\"");
  const std::string place = Joined({d.institution, d.department});
  AppendText(out, "recording", kGridLeft, 12.5, 3.3,
             XmlEscape(TruncateToWidth(
                 Joined({d.recorded_at.empty()
                             ? ""
                             : absl::StrCat("记录时间 ", DateTimeForDisplay(d.recorded_at)),
                         place, d.device.empty() ? "" : absl::StrCat("设备 ", d.device)}),
                 kLineColumns)));
  AppendText(out, "measurements", kGridLeft, 18.5, 3.3,
             XmlEscape(TruncateToWidth(MeasurementLine(d.measurements), kLineColumns)));
  std::string statements;
  for (const std::string& s : d.measurements.statements) {
    absl::StrAppend(&statements, statements.empty() ? "" : "; ", s);
  }
  if (!statements.empty()) statements = absl::StrCat("自动分析 (未经医师确认): ", statements);
  AppendText(out, "statements", kGridLeft, 24, 3,
             XmlEscape(TruncateToWidth(statements, kLineColumns)), " font-style=\"italic\"");
}

//! cairo PNG stream sink appending to a std::string.
cairo_status_t AppendPngBytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

struct GObjectUnref {
  void operator()(gpointer p) const { g_object_unref(p); }
};
struct SurfaceDestroy {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct CairoDestroy {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};

//! An INTERNAL status for a librsvg failure. The GError text is left out: it may quote the SVG,
//! which carries the patient's name.
absl::Status RsvgFailure(absl::string_view step, GError* error) {
  const int code = error != nullptr ? error->code : 0;
  if (error != nullptr) g_error_free(error);
  return absl::InternalError(absl::StrCat("rasterising the ECG tracing failed while ", step,
                                          " (librsvg code ", code, ")"));
}

}  // namespace

EcgPaperSize EcgPaper() {
  return EcgPaperSize{kGridLeft + kGridWidth + kMarginMm, kGridTop + kGridHeight + kMarginMm};
}

std::string RenderEcgSvg(const EcgRecording& recording, const EcgRenderOptions& /*options*/) {
  std::string out;
  out.reserve(512 * 1024);
  AppendHeader(out, recording);
  AppendGrid(out);
  const EcgGroup* group = DrawnGroup(recording);
  for (int row = 0; row <= kLeadRows; ++row) AppendCalibration(out, RowTop(row) + kRowMm / 2);
  for (int column = 0; column < kColumns; ++column) {
    for (int row = 0; row < kLeadRows; ++row) AppendLeadPanel(out, group, column, row);
  }
  AppendRhythmStrip(out, group);
  out += "</svg>\n";
  return out;
}

absl::StatusOr<std::string> RenderEcgPng(const EcgRecording& recording,
                                         const EcgRenderOptions& options) {
  const double ppm = options.png_pixels_per_mm;
  if (!std::isfinite(ppm) || ppm <= 0 || ppm > kMaxPixelsPerMm) {
    return absl::InvalidArgumentError(
        absl::StrCat("ECG PNG resolution must be above 0 and at most ", kMaxPixelsPerMm,
                     " pixels per millimetre"));
  }
  const EcgPaperSize paper = EcgPaper();
  const int width = std::max(1, static_cast<int>(std::lround(paper.width_mm * ppm)));
  const int height = std::max(1, static_cast<int>(std::lround(paper.height_mm * ppm)));
  const std::string svg = RenderEcgSvg(recording, options);

  GError* error = nullptr;
  std::unique_ptr<RsvgHandle, GObjectUnref> handle(
      rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &error));
  if (handle == nullptr) return RsvgFailure("loading the SVG", error);
  std::unique_ptr<cairo_surface_t, SurfaceDestroy> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError("rasterising the ECG tracing failed: no cairo image surface");
  }
  std::unique_ptr<cairo_t, CairoDestroy> cr(cairo_create(surface.get()));
  const RsvgRectangle viewport{0, 0, static_cast<double>(width), static_cast<double>(height)};
  if (!rsvg_handle_render_document(handle.get(), cr.get(), &viewport, &error)) {
    return RsvgFailure("drawing", error);
  }
  cairo_surface_flush(surface.get());
  std::string png;
  if (cairo_surface_write_to_png_stream(surface.get(), AppendPngBytes, &png) !=
      CAIRO_STATUS_SUCCESS) {
    return absl::InternalError("rasterising the ECG tracing failed while encoding the PNG");
  }
  return png;
}

}  // namespace rdg::clients
