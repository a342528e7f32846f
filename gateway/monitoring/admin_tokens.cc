#include "gateway/monitoring/admin_tokens.h"

#include <dirent.h>
#include <glog/logging.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "storage/base/posix_file.h"

namespace rdg::monitoring {
namespace {

constexpr absl::string_view kSuffix = ".token";
constexpr size_t kMinTokenLength = 32;

}  // namespace

absl::StatusOr<std::vector<AdministratorTokens::Entry>> AdministratorTokens::Read(
    const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr && errno == ENOENT) return std::vector<Entry>();  // none issued yet
  if (d == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("monitoring.token_dir ", dir, " cannot be read: ", std::strerror(errno)));
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const absl::string_view name(e->d_name);
    if (name.size() > kSuffix.size() && absl::EndsWith(name, kSuffix) && name[0] != '.') {
      names.emplace_back(name);
    }
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<Entry> entries;
  for (const std::string& file : names) {
    const std::string path = absl::StrCat(dir, "/", file);
    absl::StatusOr<std::string> text = storage::ReadWholeFile(path, "administrator token");
    if (!text.ok()) return text.status();
    Entry entry;
    entry.holder.name = std::string(absl::StripSuffix(file, kSuffix));
    std::vector<absl::string_view> lines = absl::StrSplit(*text, '\n', absl::SkipWhitespace());
    if (lines.empty() || absl::StripAsciiWhitespace(lines[0]).size() < kMinTokenLength) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the first line must be a token of at least ", kMinTokenLength,
                       " characters (deploy/issue-monitoring-token.sh makes one)"));
    }
    entry.token = std::string(absl::StripAsciiWhitespace(lines[0]));
    for (size_t i = 1; i < lines.size(); ++i) {
      absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
      if (!absl::ConsumePrefix(&line, "expires:")) continue;
      absl::Time expires;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, absl::StripAsciiWhitespace(line), &expires,
                           &error)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": \"expires:\" needs an RFC 3339 time (", error, ")"));
      }
      entry.holder.expires = expires;
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::unique_ptr<AdministratorTokens>> AdministratorTokens::Load(std::string dir) {
  std::unique_ptr<AdministratorTokens> tokens(new AdministratorTokens(std::move(dir)));
  absl::StatusOr<std::vector<Entry>> entries = Read(tokens->dir_);
  if (!entries.ok()) return entries.status();
  absl::MutexLock lock(&tokens->mu_);
  tokens->entries_ = *std::move(entries);
  tokens->read_at_ = absl::Now();
  return tokens;
}

AdministratorTokens::Match AdministratorTokens::Find(absl::string_view presented, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (absl::Now() - read_at_ >= absl::Seconds(1)) {
    read_at_ = absl::Now();
    if (absl::StatusOr<std::vector<Entry>> fresh = Read(dir_); fresh.ok()) {
      entries_ = *std::move(fresh);
    } else {
      LOG_EVERY_N(WARNING, 60) << "administrator tokens not re-read (the last good ones stay): "
                               << fresh.status();
    }
  }
  Match match;
  for (const Entry& e : entries_) {
    if (e.token.size() == presented.size() &&
        CRYPTO_memcmp(e.token.data(), presented.data(), presented.size()) == 0) {
      match.holder = e.holder;
      match.verdict =
          e.holder.expires && *e.holder.expires <= now ? Verdict::kExpired : Verdict::kValid;
    }
  }
  return match;
}

}  // namespace rdg::monitoring
