#include "storage/documents/report_pdf.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/util/time_util.h"
#include "storage/formats/text.h"

namespace rdg::documents {
namespace {

// A4 portrait in PostScript points; content between the margins.
constexpr double kPageWidth = 595.28;
constexpr double kPageHeight = 841.89;
constexpr double kMargin = 50;
constexpr double kContentWidth = kPageWidth - 2 * kMargin;
constexpr double kFooterTop = kPageHeight - 36;  //!< the page footer's baseline area
constexpr double kBodyBottom = kFooterTop - 12;  //!< text never runs below this
constexpr double kKeepWithNext = 60;  //!< a heading this close to the bottom starts a new page
constexpr absl::string_view kFamily = "Noto Sans CJK SC";
//! Columns a value may take in one third of the width (the patient and exam grids); a row with
//! a longer value is printed one field per line instead. Nothing is ever cut.
constexpr int kGridValueColumns = 22;

struct Rgb {
  double r, g, b;
};
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGrey{0.35, 0.35, 0.35};
constexpr Rgb kRed{0.75, 0.05, 0.05};
constexpr Rgb kGreen{0.05, 0.45, 0.15};
constexpr Rgb kWhite{1, 1, 1};

//! One paragraph of the report, laid out by pango and flowed line by line across pages.
struct Block {
  std::string markup;  //!< pango markup; values escaped with Escaped()
  double size = 10;    //!< points
  bool bold = false;
  PangoAlignment align = PANGO_ALIGN_LEFT;
  double space_before = 4;
  Rgb color = kBlack;
  bool heading = false;  //!< kept with the text after it
  bool banner = false;   //!< white on a red band (critical result), never split
  bool rule = false;     //!< a horizontal line instead of text
  bool grid = false;     //!< tab stops at thirds of the width
};

//! Report text as markup-safe UTF-8: invalid bytes and control characters other than line
//! breaks and tabs become U+FFFD, then <, > and & are escaped.
std::string Escaped(absl::string_view text) {
  std::string lines;
  for (absl::string_view piece : absl::StrSplit(formats::ToValidUtf8(text), '\n')) {
    if (!lines.empty()) lines += '\n';
    std::string cells;
    for (absl::string_view cell : absl::StrSplit(piece, '\t')) {
      if (!cells.empty()) cells += '\t';
      cells += formats::WithoutControls(cell);
    }
    lines += cells;
  }
  std::unique_ptr<gchar, decltype(&g_free)> escaped(
      g_markup_escape_text(lines.data(), static_cast<gssize>(lines.size())), g_free);
  return escaped.get();
}

//! "标签 value": a grey label and the value ("—" when empty).
std::string Field(absl::string_view label, absl::string_view value) {
  return absl::StrCat("<span foreground=\"#595959\">", label, "</span> ",
                      Escaped(value.empty() ? "—" : value));
}

struct Labelled {
  absl::string_view label;
  std::string value;
  int thirds = 1;  //!< how many thirds of the width the field may take in a grid row
};

//! One grid row of fields at the thirds of the width when every value fits its share; else one
//! line per field, wrapped if need be — an identifier or a name is never cut.
void AddRow(std::vector<Block>& b, const std::vector<Labelled>& fields, double space_before) {
  bool fits = true;
  std::string row;
  for (const Labelled& f : fields) {
    fits = fits && formats::DisplayWidth(f.value) <= f.thirds * kGridValueColumns;
    absl::StrAppend(&row, row.empty() ? "" : "\t", Field(f.label, f.value),
                    std::string(f.thirds - 1, '\t'));
  }
  if (fits) {
    b.push_back({.markup = row, .space_before = space_before, .grid = true});
    return;
  }
  for (const Labelled& f : fields) {
    b.push_back({.markup = Field(f.label, f.value), .space_before = space_before});
    space_before = 2;
  }
}

std::string TimeText(const google::protobuf::Timestamp& t, absl::TimeZone zone) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  const absl::Time time =
      absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(t));
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", time, zone);
}

//! A national ID as printed on forms: the first 6 and last 4 characters, the rest masked.
std::string MaskedId(absl::string_view id) {
  if (id.size() <= 10) return std::string(id);
  return absl::StrCat(id.substr(0, 6), std::string(id.size() - 10, '*'), id.substr(id.size() - 4));
}

std::string StatusText(rdg::v1::ReportStatus status) {
  switch (status) {
    case rdg::v1::FINAL_REPORT:
      return "正式报告 FINAL";
    case rdg::v1::AMENDED_REPORT:
      return "修订报告 AMENDED";
    case rdg::v1::PRELIMINARY_REPORT:
      return "初步报告 PRELIMINARY";
    default:
      return "—";
  }
}

std::vector<Block> ReportBlocks(const rdg::v1::DeliveredReport& d, const ReportPrintout& p) {
  const rdg::v1::ReportVersion& report = d.report();
  const rdg::v1::ReportContent& c = report.content();
  const rdg::v1::Exam& exam = d.exam();
  const rdg::v1::Patient& patient = exam.patient();
  std::vector<Block> b;
  b.push_back({.markup = Escaped(d.platform_name()),
               .size = 13,
               .bold = true,
               .align = PANGO_ALIGN_CENTER,
               .space_before = 0});
  b.push_back({.markup = "诊断报告单", .size = 20, .bold = true, .align = PANGO_ALIGN_CENTER});
  b.push_back({.markup = Escaped(d.reader_institution_name()),
               .size = 11,
               .align = PANGO_ALIGN_CENTER,
               .space_before = 2});
  b.push_back({.markup = "", .space_before = 8, .rule = true});
  if (c.critical() || d.urgent()) {
    std::string text = "危急值 CRITICAL";
    if (d.has_acknowledge_by()) {
      absl::StrAppend(&text, " — 请于 ", Escaped(TimeText(d.acknowledge_by(), p.zone)),
                      " 前确认收到");
    }
    b.push_back({.markup = text, .size = 11.5, .bold = true, .space_before = 8, .banner = true});
  }
  if (c.status() == rdg::v1::AMENDED_REPORT) {
    b.push_back(
        {.markup = absl::StrCat("本报告为修订报告，取代报告 ", Escaped(c.supersedes_report_id())),
         .bold = true,
         .space_before = 8,
         .color = kRed});
    if (!c.amendment_reason().empty()) {
      b.push_back(
          {.markup = absl::StrCat("修订原因：", Escaped(c.amendment_reason())), .color = kRed});
    }
  }

  b.push_back(
      {.markup = "患者信息", .size = 12, .bold = true, .space_before = 10, .heading = true});
  const std::string name = patient.display_name().empty() ? patient.name() : patient.display_name();
  AddRow(b,
         {{"姓名", name},
          {"性别", formats::SexForDisplay(patient.sex())},
          {"年龄", formats::AgeForDisplay(patient.age())}},
         4);
  AddRow(b,
         {{"患者ID", patient.patient_id()},
          {"出生日期", formats::DateForDisplay(patient.birth_date())},
          {"身份证号", MaskedId(patient.national_id())}},
         2);
  b.push_back({.markup = Field("送检机构", exam.origin_institution_name().empty()
                                               ? exam.origin_institution()
                                               : exam.origin_institution_name()),
               .space_before = 2});

  b.push_back(
      {.markup = "检查信息", .size = 12, .bold = true, .space_before = 10, .heading = true});
  const std::string modalities = absl::StrJoin(exam.modalities(), "/");
  const std::string kind = modalities.empty() || modalities == exam.exam_type()
                               ? exam.exam_type()
                               : absl::StrCat(exam.exam_type(), " ", modalities);
  AddRow(b,
         {{"检查类型", kind},
          {"检查部位", exam.body_part()},
          {"检查日期", formats::DateForDisplay(exam.study_date())}},
         4);
  AddRow(b, {{"检查号", c.exam_id()}, {"登记号", exam.accession_number()}}, 2);
  if (!exam.study_description().empty()) {
    b.push_back({.markup = Field("检查描述", exam.study_description()), .space_before = 2});
  }
  b.push_back({.markup = "以上患者与检查信息由平台按检查数据提供，不在电子签名范围内。",
               .size = 8,
               .space_before = 4,
               .color = kGrey});
  b.push_back({.markup = "", .space_before = 8, .rule = true});

  b.push_back(
      {.markup = "检查所见", .size = 12, .bold = true, .space_before = 10, .heading = true});
  b.push_back({.markup = Escaped(c.findings().empty() ? "—" : c.findings()), .size = 10.5});
  b.push_back(
      {.markup = "诊断意见", .size = 12, .bold = true, .space_before = 12, .heading = true});
  b.push_back({.markup = Escaped(c.impression()),
               .size = 11,
               .bold = true,
               .color = c.critical() ? kRed : kBlack});
  b.push_back({.markup = "", .space_before = 14, .rule = true});

  const std::string reader = p.signer_name.empty() || p.signer_name == c.reader_user()
                                 ? c.reader_user()
                                 : absl::StrCat(p.signer_name, " (", c.reader_user(), ")");
  AddRow(b, {{"报告医师", reader, 2}, {"报告状态", StatusText(c.status())}}, 8);
  const std::string institution =
      d.reader_institution_name().empty() ? c.reader_institution() : d.reader_institution_name();
  b.push_back({.markup = Field("报告机构", c.desk().empty()
                                               ? institution
                                               : absl::StrCat(institution, " · 阅片组 ", c.desk())),
               .space_before = 2});
  AddRow(
      b,
      {{"签名时间", TimeText(c.signed_at(), p.zone), 2}, {"版本", absl::StrCat(report.version())}},
      2);
  const std::string format =
      report.signature().format() == rdg::v1::SM2_SM3_RAW ? "SM2/SM3" : "CMS (ECDSA/RSA, SHA-256)";
  b.push_back(
      {.markup = absl::StrCat("<span foreground=\"#595959\">电子签名</span> ",
                              p.signature_verified ? "<b>✔ 已验证</b> " : "<b>✘ 未通过验证</b> ",
                              Escaped(p.signature_detail), " · ", format),
       .space_before = 6,
       .color = p.signature_verified ? kGreen : kRed});
  b.push_back({.markup = absl::StrCat(
                   "<span foreground=\"#595959\">签名证书 SHA-256</span> ", "<tt>",
                   Escaped(p.signer_fingerprint.empty() ? "—" : p.signer_fingerprint), "</tt>"),
               .size = 8.5,
               .space_before = 2});
  b.push_back({.markup = absl::StrCat("本报告经报告医师电子签名。具有法律效力的是签名的报告文本 ",
                                      "(report.txt) 及其签名文件；本页为其打印件。报告编号 ",
                                      Escaped(report.report_id()), "。"),
               .size = 8.5,
               .space_before = 10,
               .color = kGrey});
  return b;
}

//! Lays the blocks out on pages: first to count the pages, then to draw them.
class Pager {
 public:
  Pager(cairo_t* cr, bool draw, int total_pages, std::string running_head)
      : cr_(cr), draw_(draw), total_(total_pages), running_head_(std::move(running_head)) {}

  void Flow(const std::vector<Block>& blocks) {
    StartPage();
    for (const Block& block : blocks) Place(block);
    FinishPage();
  }
  int pages() const { return page_; }

 private:
  using Layout = std::unique_ptr<PangoLayout, decltype(&g_object_unref)>;

  Layout MakeLayout(const Block& block, double width) {
    Layout layout(pango_cairo_create_layout(cr_), g_object_unref);
    PangoFontDescription* font = pango_font_description_from_string(
        absl::StrCat(kFamily, block.bold ? " Bold " : " ", block.size).c_str());
    pango_layout_set_font_description(layout.get(), font);
    pango_font_description_free(font);
    pango_layout_set_width(layout.get(), static_cast<int>(width * PANGO_SCALE));
    pango_layout_set_wrap(layout.get(), PANGO_WRAP_WORD_CHAR);
    pango_layout_set_alignment(layout.get(), block.align);
    if (block.grid) {
      PangoTabArray* tabs = pango_tab_array_new_with_positions(
          2, TRUE, PANGO_TAB_LEFT, static_cast<int>(kContentWidth / 3), PANGO_TAB_LEFT,
          static_cast<int>(2 * kContentWidth / 3));
      pango_layout_set_tabs(layout.get(), tabs);
      pango_tab_array_free(tabs);
    }
    pango_layout_set_markup(layout.get(), block.markup.c_str(), -1);
    return layout;
  }

  //! Draws `block` at the cursor and moves it down; `flow`: breaks to a new page where the
  //! block does not fit (the page footer is placed without).
  void Place(const Block& block, bool flow = true) {
    y_ += block.space_before;
    if (block.rule) {
      if (draw_) {
        cairo_set_source_rgb(cr_, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr_, 0.6);
        cairo_move_to(cr_, kMargin, y_);
        cairo_line_to(cr_, kMargin + kContentWidth, y_);
        cairo_stroke(cr_);
      }
      y_ += 2;
      return;
    }
    const double pad = block.banner ? 6 : 0;
    Layout layout = MakeLayout(block, kContentWidth - 2 * pad);
    PangoRectangle extent;
    pango_layout_get_pixel_extents(layout.get(), nullptr, &extent);
    if (flow && ((block.heading && y_ + kKeepWithNext > kBodyBottom) ||
                 (block.banner && y_ + extent.height + 2 * pad > kBodyBottom))) {
      NewPage();
    }
    if (block.banner) {
      if (draw_) {
        cairo_set_source_rgb(cr_, kRed.r, kRed.g, kRed.b);
        cairo_rectangle(cr_, kMargin, y_, kContentWidth, extent.height + 2 * pad);
        cairo_fill(cr_);
      }
      y_ += pad;
    }
    const Rgb color = block.banner ? kWhite : block.color;
    PangoLayoutIter* it = pango_layout_get_iter(layout.get());
    do {
      PangoRectangle line;
      pango_layout_iter_get_line_extents(it, nullptr, &line);
      const double height = static_cast<double>(line.height) / PANGO_SCALE;
      if (flow && !block.banner && y_ + height > kBodyBottom) NewPage();
      if (draw_) {
        const double baseline =
            static_cast<double>(pango_layout_iter_get_baseline(it) - line.y) / PANGO_SCALE;
        cairo_set_source_rgb(cr_, color.r, color.g, color.b);
        cairo_move_to(cr_, kMargin + pad + static_cast<double>(line.x) / PANGO_SCALE,
                      y_ + baseline);
        pango_cairo_show_layout_line(cr_, pango_layout_iter_get_line_readonly(it));
      }
      y_ += height;
    } while (pango_layout_iter_next_line(it));
    pango_layout_iter_free(it);
    y_ += pad;
  }

  void StartPage() {
    ++page_;
    y_ = kMargin;
    if (page_ > 1) {
      Place({.markup = absl::StrCat("诊断报告单（续） ", Escaped(running_head_)),
             .size = 8.5,
             .space_before = 0,
             .color = kGrey});
      y_ += 8;
    }
  }

  void FinishPage() {
    if (!draw_) return;
    const double y = y_;
    y_ = kFooterTop;
    Place({.markup = absl::StrCat("第 ", page_, " 页 / 共 ", total_, " 页"),
           .size = 8.5,
           .align = PANGO_ALIGN_CENTER,
           .space_before = 0,
           .color = kGrey},
          /*flow=*/false);
    y_ = y;
    cairo_show_page(cr_);
  }

  void NewPage() {
    FinishPage();
    StartPage();
  }

  cairo_t* cr_;
  const bool draw_;
  const int total_;
  const std::string running_head_;
  int page_ = 0;
  double y_ = kMargin;
};

cairo_status_t AppendBytes(void* closure, const unsigned char* data, unsigned int length) {
  if (closure != nullptr) {
    static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  }
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

absl::StatusOr<std::string> RenderReportPdf(const rdg::v1::DeliveredReport& delivered,
                                            const ReportPrintout& printout) {
  const std::vector<Block> blocks = ReportBlocks(delivered, printout);
  const rdg::v1::Patient& patient = delivered.exam().patient();
  const std::string running_head = absl::StrCat(
      "患者 ", patient.display_name().empty() ? patient.name() : patient.display_name(), " · 检查 ",
      delivered.report().content().exam_id());
  std::string pdf;
  int pages = 0;
  for (bool draw : {false, true}) {  // count the pages, then draw "page n of N"
    std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
        cairo_pdf_surface_create_for_stream(AppendBytes, draw ? &pdf : nullptr, kPageWidth,
                                            kPageHeight),
        cairo_surface_destroy);
    const std::string title = absl::StrCat("诊断报告单 ", delivered.report().content().exam_id());
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE, title.c_str());
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_CREATOR, "RDG");
    std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()),
                                                          cairo_destroy);
    Pager pager(cr.get(), draw, pages, running_head);
    pager.Flow(blocks);
    pages = pager.pages();
    cr.reset();
    cairo_surface_finish(surface.get());
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
      return absl::InternalError(
          absl::StrCat("cannot draw the PDF report: ",
                       cairo_status_to_string(cairo_surface_status(surface.get()))));
    }
  }
  return pdf;
}

}  // namespace rdg::documents
