#include "gateway/monitoring/admin_tokens.h"

#include <dirent.h>
#include <glog/logging.h>
#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "storage/base/posix_file.h"
#include "storage/base/status_macros.h"

namespace rdg::monitoring {
namespace {

constexpr absl::string_view kSuffix = ".token";
constexpr size_t kMinTokenLength = 32;

}  // namespace

absl::StatusOr<AdministratorTokens::Entry> AdministratorTokens::ReadOne(const std::string& path,
                                                                        absl::string_view file) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, " is readable by others (mode ",
                                                    absl::StrFormat("%04o", st.st_mode & 07777),
                                                    "); chmod 0600 it"));
  }
  RDG_ASSIGN_OR_RETURN(std::string text, storage::ReadWholeFile(path, "administrator token"));
  Entry entry;
  entry.holder.name = std::string(absl::StripSuffix(file, kSuffix));
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.empty() || absl::StripAsciiWhitespace(lines[0]).size() < kMinTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the first line must be a token of at least ", kMinTokenLength,
                     " characters (deploy/issue-monitoring-token.sh makes one)"));
  }
  entry.token = std::string(absl::StripAsciiWhitespace(lines[0]));
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    absl::Time expires;
    std::string error;
    if (!absl::ConsumePrefix(&line, "expires:") ||
        !absl::ParseTime(absl::RFC3339_full, absl::StripAsciiWhitespace(line), &expires, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": after the token only \"expires: <RFC 3339 time>\" may follow (line ", i + 1,
          ")"));
    }
    if (entry.holder.expires) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": more than one \"expires:\""));
    }
    entry.holder.expires = expires;
  }
  if (!entry.holder.expires) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no \"expires:\" line; every administrator token expires"));
  }
  return entry;
}

absl::StatusOr<std::vector<AdministratorTokens::Entry>> AdministratorTokens::Read(
    const std::string& dir, std::vector<std::string>* problems) {
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
  // A file that is not right counts for nothing (its holder is refused): it never keeps a
  // removed neighbour's token alive. A token in two files is nobody's.
  std::vector<Entry> entries;
  absl::flat_hash_map<std::string, int> uses;
  for (const std::string& file : names) {
    absl::StatusOr<Entry> entry = ReadOne(absl::StrCat(dir, "/", file), file);
    if (!entry.ok()) {
      problems->push_back(std::string(entry.status().message()));
      continue;
    }
    ++uses[entry->token];
    entries.push_back(*std::move(entry));
  }
  std::vector<Entry> unique;
  for (Entry& e : entries) {
    if (uses[e.token] == 1) {
      unique.push_back(std::move(e));
    } else {
      problems->push_back(absl::StrCat(dir, "/", e.holder.name, kSuffix,
                                       ": the same token as another file; neither is accepted"));
    }
  }
  return unique;
}

absl::StatusOr<std::unique_ptr<AdministratorTokens>> AdministratorTokens::Load(std::string dir) {
  std::unique_ptr<AdministratorTokens> tokens(new AdministratorTokens(std::move(dir)));
  std::vector<std::string> problems;
  absl::StatusOr<std::vector<Entry>> entries = Read(tokens->dir_, &problems);
  if (!entries.ok()) return entries.status();
  for (const std::string& p : problems) LOG(WARNING) << "administrator token refused: " << p;
  absl::MutexLock lock(&tokens->mu_);
  tokens->problems_ = std::move(problems);
  tokens->entries_ = *std::move(entries);
  tokens->read_at_ = absl::Now();
  return tokens;
}

AdministratorTokens::Match AdministratorTokens::Find(absl::string_view presented, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (absl::Now() - read_at_ >= absl::Seconds(1)) {
    read_at_ = absl::Now();
    std::vector<std::string> problems;
    absl::StatusOr<std::vector<Entry>> fresh = Read(dir_, &problems);
    if (!fresh.ok()) {
      // The directory itself is unreadable: nobody's token is accepted until it is again.
      LOG_EVERY_N(WARNING, 60) << "administrator tokens: " << fresh.status();
      fresh = std::vector<Entry>();
    }
    if (problems != problems_) {  // said once, not at every re-read
      for (const std::string& p : problems) LOG(WARNING) << "administrator token refused: " << p;
      problems_ = std::move(problems);
    }
    entries_ = *std::move(fresh);
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
