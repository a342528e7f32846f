#include "gateway/dicomweb/accept.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rdg::dicomweb {
namespace {

//! `text` split at `sep` outside double quotes.
std::vector<absl::string_view> SplitOutsideQuotes(absl::string_view text, char sep) {
  std::vector<absl::string_view> out;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '"') quoted = !quoted;
    if (text[i] == sep && !quoted) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

std::string Unquoted(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

}  // namespace

std::vector<MediaRange> ParseAccept(absl::string_view accept) {
  std::vector<MediaRange> out;
  for (absl::string_view item : SplitOutsideQuotes(accept, ',')) {
    std::vector<absl::string_view> pieces = SplitOutsideQuotes(item, ';');
    MediaRange range;
    range.type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(pieces[0]));
    if (range.type.empty()) continue;
    for (size_t i = 1; i < pieces.size(); ++i) {
      const size_t eq = pieces[i].find('=');
      if (eq == absl::string_view::npos) continue;
      std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(pieces[i].substr(0, eq)));
      std::string value = Unquoted(pieces[i].substr(eq + 1));
      if (name == "q") {
        if (!absl::SimpleAtod(value, &range.q)) range.q = 1;
        continue;
      }
      range.params[std::move(name)] = std::move(value);
    }
    if (range.q > 0) out.push_back(std::move(range));
  }
  return out;
}

bool AcceptsType(absl::string_view accept, absl::string_view type) {
  if (absl::StripAsciiWhitespace(accept).empty()) return true;
  const std::string wanted = absl::AsciiStrToLower(type);
  const std::string family = wanted.substr(0, wanted.find('/')) + "/*";
  for (const MediaRange& r : ParseAccept(accept)) {
    if (r.type == "*/*" || r.type == family || r.type == wanted) return true;
  }
  return false;
}

bool AcceptsMultipart(absl::string_view accept, absl::string_view part_type,
                      absl::string_view transfer_syntax) {
  if (absl::StripAsciiWhitespace(accept).empty()) return true;
  const std::string part = absl::AsciiStrToLower(part_type);
  auto syntax_ok = [&](const MediaRange& r) {
    auto ts = r.params.find("transfer-syntax");
    return ts == r.params.end() || ts->second == "*" || transfer_syntax.empty() ||
           ts->second == transfer_syntax;
  };
  for (const MediaRange& r : ParseAccept(accept)) {
    if (r.type == "*/*") return true;
    if (r.type == part && syntax_ok(r)) return true;
    if (r.type != "multipart/related" && r.type != "multipart/*") continue;
    auto t = r.params.find("type");
    if (t != r.params.end() && absl::AsciiStrToLower(t->second) != part) continue;
    if (syntax_ok(r)) return true;
  }
  return false;
}

}  // namespace rdg::dicomweb
