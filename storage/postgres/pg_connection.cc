#include "storage/postgres/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <limits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace rdg::storage::pg {

Param P(absl::Time t) {
  return std::to_string(t == absl::InfiniteFuture() ? std::numeric_limits<int64_t>::max()
                                                    : absl::ToUnixMicros(t));
}

Param PBytes(absl::string_view bytes) { return absl::StrCat("\\x", absl::BytesToHexString(bytes)); }

Param PTextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (r_ != nullptr) PQclear(r_);
    r_ = other.r_;
    other.r_ = nullptr;
  }
  return *this;
}

Result::~Result() {
  if (r_ != nullptr) PQclear(r_);
}

int Result::rows() const { return PQntuples(r_); }

int64_t Result::affected() const {
  int64_t n = 0;
  return absl::SimpleAtoi(PQcmdTuples(r_), &n) ? n : 0;
}

bool Result::IsNull(int row, int col) const { return PQgetisnull(r_, row, col) == 1; }

std::string Result::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t Result::Int(int row, int col) const {
  int64_t v = 0;
  return absl::SimpleAtoi(PQgetvalue(r_, row, col), &v) ? v : 0;
}

bool Result::Bool(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }

double Result::Double(int row, int col) const {
  double v = 0;
  return absl::SimpleAtod(PQgetvalue(r_, row, col), &v) ? v : 0;
}

std::optional<absl::Time> Result::OptionalTime(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Time(row, col);
}

absl::Time Result::Time(int row, int col) const {
  const int64_t micros = Int(row, col);
  return micros == std::numeric_limits<int64_t>::max() ? absl::InfiniteFuture()
                                                       : absl::FromUnixMicros(micros);
}

std::string Result::Bytes(int row, int col) const {
  // BYTEA in text form is "\x" and two hex digits per byte (bytea_output = hex, the default).
  absl::string_view text(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  if (!absl::ConsumePrefix(&text, "\\x")) return std::string();
  return absl::HexStringToBytes(text);
}

absl::Status Error(const PGresult* result, PGconn* conn) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // The primary message only: DETAIL may quote a row ("Failing row contains (…)"), patient data.
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* constraint =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME) : nullptr;
  std::string text = primary != nullptr ? primary : "";
  if (text.empty() && conn != nullptr) text = PQerrorMessage(conn);  // libpq's own, no rows
  const std::string message =
      absl::StrCat("postgres: ", absl::StripTrailingAsciiWhitespace(text),
                   state != nullptr ? absl::StrCat(" (SQLSTATE ", state, ")") : "",
                   constraint != nullptr ? absl::StrCat(" [constraint ", constraint, "]") : "");
  const absl::string_view code = state != nullptr ? state : "";
  if ((conn != nullptr && PQstatus(conn) == CONNECTION_BAD) || code.empty() ||
      (absl::StartsWith(code, "08") && code != "08P01") || absl::StartsWith(code, "53") ||
      absl::StartsWith(code, "57P0")) {
    return absl::UnavailableError(message);
  }
  if (code == "40001" || code == "40P01") return absl::AbortedError(message);
  if (code == "23505") return absl::AlreadyExistsError(message);
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo) {
  // Defaults the connection string may override (it comes last): a connect that does not
  // answer gives up, and a connection whose peer vanished without a word (a host down, a
  // firewall's idle timeout) is found broken within about a minute instead of TCP's hours.
  const char* keywords[] = {
      "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
      "dbname",          nullptr};
  const char* values[] = {"10", "1", "30", "10", "3", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return absl::UnavailableError("postgres: out of memory connecting");
  auto c = std::unique_ptr<Connection>(new Connection(conn));
  if (PQstatus(conn) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("postgres: cannot connect to the index (",
                     absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)), ")"));
  }
  // The index's text is UTF-8 whatever the server's default; times are integers, so the
  // session's time zone does not matter.
  if (PQsetClientEncoding(conn, "UTF8") != 0) {
    return absl::UnavailableError("postgres: the server refuses client encoding UTF8");
  }
  // The index's statements are short: compiling one (JIT, for plans the planner thinks costly,
  // e.g. on stale statistics) costs more than running it.
  // The server likewise drops the session of a client that vanished (and with it, say, the
  // housekeeping leader's advisory lock) within about a minute.
  if (absl::Status s = c->Run("SET jit = off; SET tcp_keepalives_idle = 30; "
                              "SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3; "
                              "SET tcp_user_timeout = 60000");
      !s.ok()) {
    return s;
  }
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::broken() const { return PQstatus(conn_) != CONNECTION_OK; }

bool Connection::idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

bool Connection::in_failed_transaction() const {
  return PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

bool Connection::WaitReadable(absl::Duration timeout) {
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (p.fd < 0) return true;  // lost: the caller finds out by reading
  return ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 0;
}

absl::StatusOr<std::vector<std::string>> Connection::TakeNotifications() {
  if (PQconsumeInput(conn_) == 0) return Error(nullptr, conn_);
  std::vector<std::string> payloads;
  while (PGnotify* n = PQnotifies(conn_)) {
    payloads.emplace_back(n->extra != nullptr ? n->extra : "");
    PQfreemem(n);
  }
  return payloads;
}

absl::StatusOr<Result> Connection::Exec(const char* sql, std::initializer_list<Param> params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = absl::StrCat("rdg", prepared_.size() + 1);
    Result prepared(PQprepare(conn_, name.c_str(), sql, 0, nullptr));
    if (PQresultStatus(prepared.r_) != PGRES_COMMAND_OK) return Error(prepared.r_, conn_);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) {
    // Text goes to libpq as a C string: a NUL would end the value there, silently.
    if (p.has_value() && p->find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("postgres: parameter ", values.size() + 1, " holds a NUL character"));
    }
    values.push_back(p.has_value() ? p->c_str() : nullptr);
  }
  Result r(PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()), values.data(),
                          nullptr, nullptr, 0));
  const ExecStatusType status = PQresultStatus(r.r_);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Error(r.r_, conn_);
  return r;
}

absl::Status Connection::Run(const std::string& sql) {
  Result r(PQexec(conn_, sql.c_str()));
  const ExecStatusType status = PQresultStatus(r.r_);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Error(r.r_, conn_);
  return absl::OkStatus();
}

}  // namespace rdg::storage::pg
