#include "gateway/dicomweb/dicomweb_server.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gateway/auth/principal.h"
#include "gateway/auth/rbac.h"
#include "gateway/dicomweb/dicom_json.h"
#include "gateway/dicomweb/multipart_reader.h"
#include "gateway/dicomweb/stow.h"
#include "gateway/http/https_server.h"
#include "glog/logging.h"
#include "storage/base/digest.h"
#include "storage/base/random.h"
#include "storage/base/status_macros.h"

namespace rdg::dicomweb {
namespace {

constexpr int kListenBacklog = 1024;
constexpr size_t kThreads = 16;
constexpr size_t kMaxPending = 256;
//! Studies a search looks through (a clinic's newest, a reader's worklist): QIDO filters them.
constexpr size_t kSearchScope = 5000;
constexpr size_t kChunk = 256 * 1024;
//! What a refused STOW-RS request is read of before its answer (then the connection closes).
constexpr size_t kMaxDrainedBytes = 64 << 20;
constexpr char kDicomJson[] = "application/dicom+json";

int HttpStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void Fail(httplib::Response& res, const absl::Status& s) {
  res.status = HttpStatus(s);
  res.set_content(absl::StrCat(s.message(), "\n"), "text/plain; charset=utf-8");
}

//! Whether the request's Accept allows `type` (absent, */*, or naming it).
bool Accepts(const httplib::Request& req, std::initializer_list<absl::string_view> types) {
  const std::string accept = req.get_header_value("Accept");
  if (accept.empty() || absl::StrContains(accept, "*/*")) return true;
  for (absl::string_view t : types) {
    if (absl::StrContains(absl::AsciiStrToLower(accept), t)) return true;
  }
  return false;
}

std::string BaseUrl(const httplib::Request& req) {
  return absl::StrCat("https://", req.get_header_value("Host"), "/dicomweb");
}

//! A QIDO date match: "YYYYMMDD", "A-B", "A-", "-B".
bool DateMatches(absl::string_view filter, const std::string& date) {
  if (filter.empty()) return true;
  const size_t dash = filter.find('-');
  if (dash == absl::string_view::npos) return date == filter;
  const absl::string_view from = filter.substr(0, dash), to = filter.substr(dash + 1);
  return !date.empty() && (from.empty() || date >= from) && (to.empty() || date <= to);
}

//! A QIDO wildcard match ('*' any run, '?' one character), ASCII case-insensitive.
bool Wildcard(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0, star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || absl::ascii_tolower(pattern[p]) == absl::ascii_tolower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

//! A patient name matches when the pattern matches the whole PN, one of its groups, or one of
//! them with '^' read as a space (a search for "zhang*" or "张*" finds "Zhang^San=张^三").
bool NameMatches(absl::string_view pattern, const std::string& name) {
  if (pattern.empty()) return true;
  if (Wildcard(pattern, name)) return true;
  for (absl::string_view group : absl::StrSplit(name, '=')) {
    if (Wildcard(pattern, group) ||
        Wildcard(pattern, absl::StrJoin(absl::StrSplit(group, '^'), " ")) ||
        Wildcard(pattern, absl::StrJoin(absl::StrSplit(group, '^'), ""))) {
      return true;
    }
  }
  return false;
}

//! A query parameter by keyword or by tag ("PatientID" or "00100020").
std::string Param(const httplib::Request& req, const char* keyword, const char* tag) {
  if (req.has_param(keyword)) return req.get_param_value(keyword);
  return req.get_param_value(tag);
}

//! One stored file of a WADO-RS response.
struct Part {
  std::string path;
  std::string transfer_syntax_uid;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DicomWebServer>> DicomWebServer::Start(
    const rdg::v1::DicomWebConfig& config, const rdg::v1::TlsConfig& tls, Dependencies deps) {
  std::unique_ptr<DicomWebServer> d(new DicomWebServer(config, std::move(deps)));
  // A certificate is asked for in every handshake but not required there: a browser's CORS
  // preflight (OPTIONS) comes without one. Every other request without one is refused (401).
  RDG_ASSIGN_OR_RETURN(std::unique_ptr<httplib::Server> server,
                       http::TlsServer(tls, http::ClientCertificates::kOptional, "DICOMweb"));
  http::ServeNewestFirst(*server, kThreads, kMaxPending);
  server->set_read_timeout(10);
  server->set_write_timeout(60);  // a viewer on a slow county link reads a large study
  server->set_keep_alive_timeout(10);
  // STOW-RS bodies are read as they come, each instance bounded by limits.max_object_bytes.
  server->set_payload_max_length(std::numeric_limits<size_t>::max());
  d->Route(*server);
  RDG_ASSIGN_OR_RETURN(d->listening_, http::Listening::Start(std::move(server), config.listen(),
                                                             kListenBacklog, "dicomweb"));
  return d;
}

DicomWebServer::DicomWebServer(const rdg::v1::DicomWebConfig& config, Dependencies deps)
    : config_(config), deps_(std::move(deps)) {}

DicomWebServer::~DicomWebServer() { listening_.reset(); }

int DicomWebServer::port() const { return listening_->port(); }

void DicomWebServer::Route(httplib::Server& s) {
  // Every answer: CORS for the configured viewers' origins.
  auto cors = [this](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return;
    for (const std::string& allowed : config_.cors_origins()) {
      if (allowed == origin) {
        res.set_header("Access-Control-Allow-Origin", origin);
        res.set_header("Access-Control-Allow-Credentials", "true");  // the client certificate
        res.set_header("Vary", "Origin");
        res.set_header("Access-Control-Expose-Headers", "Content-Type");
        return;
      }
    }
  };
  // The caller from the verified client certificate (the handshake required one).
  auto caller = [this](const httplib::Request& req) -> absl::StatusOr<auth::Principal> {
    const std::string pem = http::PeerCertificatePem(req);
    if (pem.empty()) return absl::UnauthenticatedError("a client certificate is required");
    if (deps_.revoked && deps_.revoked(pem)) {
      return absl::PermissionDeniedError("the client certificate is revoked");
    }
    RDG_ASSIGN_OR_RETURN(auth::Principal who, auth::PrincipalFromCertificate(pem, deps_.directory));
    who.peer = http::PeerAddress(req);
    return who;
  };
  using Handler = std::function<absl::Status(const auth::Principal&, const httplib::Request&,
                                             httplib::Response&)>;
  auto serve = [cors, caller](Handler handler) {
    return [cors, caller, handler](const httplib::Request& req, httplib::Response& res) {
      cors(req, res);
      absl::StatusOr<auth::Principal> who = caller(req);
      absl::Status s = who.ok() ? handler(*who, req, res) : who.status();
      if (!s.ok()) Fail(res, s);
    };
  };

  s.Post(R"(/dicomweb/studies)", [this, cors, caller](const httplib::Request& req,
                                                      httplib::Response& res,
                                                      const httplib::ContentReader& content) {
    cors(req, res);
    absl::StatusOr<auth::Principal> who = caller(req);
    absl::Status allowed =
        who.ok() ? auth::Authorize(*who, auth::Permission::kUpload) : who.status();
    if (!allowed.ok()) {
      // Read (a bounded part of) what the client is sending, so that it reads the
      // refusal rather than a reset connection.
      size_t drained = 0;
      content([&drained](const char*, size_t n) { return (drained += n) < kMaxDrainedBytes; });
      Fail(res, allowed);
      return;
    }
    if (absl::Status s = Stow(*who, req, res, content); !s.ok()) Fail(res, s);
  });

  s.Options(R"(/dicomweb/.*)", [cors](const httplib::Request& req, httplib::Response& res) {
    cors(req, res);
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Accept, Content-Type");
    res.set_header("Access-Control-Max-Age", "600");
    res.status = 204;
  });

  // QIDO-RS: studies.
  s.Get(
      R"(/dicomweb/studies)", serve([this](const auth::Principal& who, const httplib::Request& req,
                                           httplib::Response& res) -> absl::Status {
        if (!Accepts(req, {"application/dicom+json", "application/json"})) {
          return absl::InvalidArgumentError("QIDO-RS answers application/dicom+json");
        }
        int limit = 100, offset = 0;
        if (req.has_param("limit") && !absl::SimpleAtoi(req.get_param_value("limit"), &limit)) {
          return absl::InvalidArgumentError("limit must be a number");
        }
        if (req.has_param("offset") && !absl::SimpleAtoi(req.get_param_value("offset"), &offset)) {
          return absl::InvalidArgumentError("offset must be a number");
        }
        limit = std::clamp(limit, 1, 1000);
        offset = std::max(offset, 0);
        const std::string study = Param(req, "StudyInstanceUID", "0020000D");
        const std::string patient_id = Param(req, "PatientID", "00100020");
        const std::string name = Param(req, "PatientName", "00100010");
        const std::string accession = Param(req, "AccessionNumber", "00080050");
        const std::string date = Param(req, "StudyDate", "00080020");
        const std::string modality = Param(req, "ModalitiesInStudy", "00080061");
        RDG_ASSIGN_OR_RETURN(
            auto exams,
            deps_.access.Searchable(who, kSearchScope, absl::StrCat("studies?", req.target)));
        std::vector<std::string> found;
        int skipped = 0;
        for (const storage::ExamRecord& e : exams) {
          if (static_cast<int>(found.size()) >= limit) break;
          if ((!study.empty() &&
               !absl::c_linear_search(absl::StrSplit(study, ','), e.study_instance_uid)) ||
              (!patient_id.empty() && e.patient.patient_id != patient_id) ||
              (!accession.empty() && e.accession_number != accession) ||
              !DateMatches(date, e.study_date) || !NameMatches(name, e.patient.name)) {
            continue;
          }
          RDG_ASSIGN_OR_RETURN(auto objects, deps_.exams.ListObjects(e.exam_id));
          const std::vector<SeriesSummary> series = SeriesOf(objects);
          if (!modality.empty() &&
              std::none_of(series.begin(), series.end(),
                           [&](const SeriesSummary& x) { return x.modality == modality; })) {
            continue;
          }
          if (skipped++ < offset) continue;
          found.push_back(StudyJson(e, series, BaseUrl(req)));
        }
        res.set_content(absl::StrCat("[", absl::StrJoin(found, ","), "]"), kDicomJson);
        return absl::OkStatus();
      }));

  // QIDO-RS: the series and instances of a study.
  auto list = [this](const auth::Principal& who, const httplib::Request& req,
                     httplib::Response& res, bool instances) -> absl::Status {
    const std::string study = req.matches[1];
    const std::string series = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
    RDG_ASSIGN_OR_RETURN(auto exam, deps_.access.Open(who, study, "dicomweb_search"));
    RDG_ASSIGN_OR_RETURN(auto objects, deps_.exams.ListObjects(exam.exam_id));
    std::vector<std::string> out;
    for (const SeriesSummary& s : SeriesOf(objects)) {
      if (!series.empty() && s.series_instance_uid != series) continue;
      if (!instances) {
        out.push_back(SeriesJson(exam, s, BaseUrl(req)));
        continue;
      }
      for (const storage::ObjectRecord* o : s.instances) {
        out.push_back(InstanceJson(exam, *o, BaseUrl(req)));
      }
    }
    res.set_content(absl::StrCat("[", absl::StrJoin(out, ","), "]"), kDicomJson);
    return absl::OkStatus();
  };
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series)",
        serve([list](const auth::Principal& who, const httplib::Request& req,
                     httplib::Response& res) { return list(who, req, res, false); }));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/instances)",
        serve([list](const auth::Principal& who, const httplib::Request& req,
                     httplib::Response& res) { return list(who, req, res, true); }));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances)",
        serve([list](const auth::Principal& who, const httplib::Request& req,
                     httplib::Response& res) { return list(who, req, res, true); }));

  // The stored instances a WADO-RS path names: study, series, instance.
  auto select = [this](const auth::Principal& who, const httplib::Request& req,
                       absl::string_view action)
      -> absl::StatusOr<std::pair<storage::ExamRecord, std::vector<storage::ObjectRecord>>> {
    const std::string study = req.matches[1];
    const std::string series = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
    const std::string instance = req.matches.size() > 3 ? std::string(req.matches[3]) : "";
    RDG_ASSIGN_OR_RETURN(auto exam, deps_.access.Open(who, study, action));
    RDG_ASSIGN_OR_RETURN(auto objects, deps_.exams.ListObjects(exam.exam_id));
    std::vector<storage::ObjectRecord> chosen;
    for (auto& o : objects) {
      if (o.kind != storage::ObjectKind::kDicom) continue;
      if (!series.empty() && o.series_instance_uid != series) continue;
      if (!instance.empty() && o.sop_instance_uid != instance) continue;
      chosen.push_back(std::move(o));
    }
    if (chosen.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no such ", instance.empty() ? "series" : "instance", " in study ", study));
    }
    return std::make_pair(std::move(exam), std::move(chosen));
  };
  auto path_of = [this](const storage::ObjectRecord& o) -> absl::StatusOr<std::string> {
    RDG_ASSIGN_OR_RETURN(storage::Digest digest, storage::DigestFromHexOrRaw(o.sha256_hex));
    return deps_.blobs.PathOf(digest);
  };

  // WADO-RS: instances, streamed as multipart/related from their files.
  auto retrieve = [select, path_of](const auth::Principal& who, const httplib::Request& req,
                                    httplib::Response& res) -> absl::Status {
    if (!Accepts(req, {"multipart/related", "application/dicom"})) {
      return absl::InvalidArgumentError(
          "WADO-RS answers multipart/related; type=\"application/dicom\"");
    }
    RDG_ASSIGN_OR_RETURN(auto selected, select(who, req, "dicomweb_retrieve"));
    auto parts = std::make_shared<std::vector<Part>>();
    for (const auto& o : selected.second) {
      RDG_ASSIGN_OR_RETURN(std::string path, path_of(o));
      parts->push_back({std::move(path), o.transfer_syntax_uid});
    }
    const std::string boundary = "rdg-" + storage::RandomHex(12);
    struct Cursor {
      size_t part = 0;
      bool header_sent = false;
      std::ifstream file;
      std::string buffer = std::string(kChunk, '\0');  // one per response, reused per chunk
    };
    auto cursor = std::make_shared<Cursor>();
    res.set_chunked_content_provider(
        absl::StrCat("multipart/related; type=\"application/dicom\"; boundary=", boundary),
        [parts, cursor, boundary](size_t, httplib::DataSink& sink) {
          if (cursor->part == parts->size()) {
            const std::string end = absl::StrCat("\r\n--", boundary, "--\r\n");
            sink.write(end.data(), end.size());
            sink.done();
            return true;
          }
          const Part& p = (*parts)[cursor->part];
          if (!cursor->header_sent) {
            cursor->file = std::ifstream(p.path, std::ios::binary);
            if (!cursor->file) {
              LOG(ERROR) << "DICOMweb: cannot open stored object " << p.path;
              return false;  // the connection is cut: the client sees an incomplete answer
            }
            const std::string header =
                absl::StrCat("\r\n--", boundary, "\r\nContent-Type: application/dicom",
                             p.transfer_syntax_uid.empty()
                                 ? ""
                                 : absl::StrCat("; transfer-syntax=", p.transfer_syntax_uid),
                             "\r\n\r\n");
            sink.write(header.data(), header.size());
            cursor->header_sent = true;
            return true;
          }
          std::string& buffer = cursor->buffer;
          cursor->file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
          const std::streamsize n = cursor->file.gcount();
          if (n > 0) sink.write(buffer.data(), static_cast<size_t>(n));
          if (cursor->file.eof()) {
            cursor->file.close();
            cursor->header_sent = false;
            ++cursor->part;
          } else if (!cursor->file) {
            return false;
          }
          return true;
        });
    return absl::OkStatus();
  };
  s.Get(R"(/dicomweb/studies/([0-9.]+))", serve(retrieve));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+))", serve(retrieve));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances/([0-9.]+))", serve(retrieve));

  // WADO-RS: metadata (bounded by the number of instances; each file read as it is written).
  auto metadata = [select, path_of](const auth::Principal& who, const httplib::Request& req,
                                    httplib::Response& res) -> absl::Status {
    if (!Accepts(req, {"application/dicom+json", "application/json"})) {
      return absl::InvalidArgumentError("metadata is answered as application/dicom+json");
    }
    RDG_ASSIGN_OR_RETURN(auto selected, select(who, req, "dicomweb_metadata"));
    std::vector<std::string> out;
    for (const auto& o : selected.second) {
      RDG_ASSIGN_OR_RETURN(std::string path, path_of(o));
      RDG_ASSIGN_OR_RETURN(
          std::string json,
          InstanceMetadataJson(
              path,
              absl::StrCat(BaseUrl(req), "/studies/", selected.first.study_instance_uid, "/series/",
                           o.series_instance_uid, "/instances/", o.sop_instance_uid)));
      out.push_back(std::move(json));
    }
    res.set_content(absl::StrCat("[", absl::StrJoin(out, ","), "]"), kDicomJson);
    return absl::OkStatus();
  };
  s.Get(R"(/dicomweb/studies/([0-9.]+)/metadata)", serve(metadata));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/metadata)", serve(metadata));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances/([0-9.]+)/metadata)",
        serve(metadata));

  // WADO-RS: frames of an instance (native pixel data), as OHIF's "wadors" mode reads them.
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances/([0-9.]+)/frames/([0-9,]+))",
        serve([select, path_of](const auth::Principal& who, const httplib::Request& req,
                                httplib::Response& res) -> absl::Status {
          std::vector<int> numbers;
          for (absl::string_view n : absl::StrSplit(std::string(req.matches[4]), ',')) {
            int frame = 0;
            if (!absl::SimpleAtoi(n, &frame) || numbers.size() >= 1000) {
              return absl::InvalidArgumentError("frames are 1-based numbers, comma-separated");
            }
            numbers.push_back(frame);
          }
          RDG_ASSIGN_OR_RETURN(auto selected, select(who, req, "dicomweb_retrieve"));
          RDG_ASSIGN_OR_RETURN(std::string path, path_of(selected.second.front()));
          RDG_ASSIGN_OR_RETURN(std::vector<std::string> frames, Frames(path, numbers));
          const std::string boundary = "rdg-" + storage::RandomHex(12);
          std::string body;
          for (const std::string& f : frames) {
            absl::StrAppend(&body, "--", boundary,
                            "\r\nContent-Type: application/octet-stream\r\n\r\n", f, "\r\n");
          }
          absl::StrAppend(&body, "--", boundary, "--\r\n");
          res.set_content(
              std::move(body),
              absl::StrCat("multipart/related; type=\"application/octet-stream\"; boundary=",
                           boundary));
          return absl::OkStatus();
        }));

  // WADO-RS: a bulk data value named by a BulkDataURI.
  s.Get(
      R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances/([0-9.]+)/bulkdata/([0-9A-Fa-f]{8}))",
      serve([select, path_of](const auth::Principal& who, const httplib::Request& req,
                              httplib::Response& res) -> absl::Status {
        RDG_ASSIGN_OR_RETURN(auto selected, select(who, req, "dicomweb_retrieve"));
        RDG_ASSIGN_OR_RETURN(std::string path, path_of(selected.second.front()));
        uint32_t tag = 0;
        if (!absl::SimpleHexAtoi(std::string(req.matches[4]), &tag)) {
          return absl::InvalidArgumentError("bad tag");
        }
        RDG_ASSIGN_OR_RETURN(std::string value, BulkData(path, static_cast<uint16_t>(tag >> 16),
                                                         static_cast<uint16_t>(tag & 0xFFFF)));
        const std::string boundary = "rdg-" + storage::RandomHex(12);
        res.set_content(
            absl::StrCat("--", boundary, "\r\nContent-Type: application/octet-stream\r\n\r\n",
                         value, "\r\n--", boundary, "--\r\n"),
            absl::StrCat("multipart/related; type=\"application/octet-stream\"; boundary=",
                         boundary));
        return absl::OkStatus();
      }));
}

absl::Status DicomWebServer::Stow(const auth::Principal& who, const httplib::Request& req,
                                  httplib::Response& res, const httplib::ContentReader& content) {
  if (deps_.ingestor == nullptr) return absl::UnimplementedError("STOW-RS is not served here");
  const std::string type = req.get_header_value("Content-Type");
  const std::string parts = ParameterOf(type, "type");
  if (MediaTypeOf(type) != "multipart/related" || BoundaryOf(type).empty() ||
      (!parts.empty() && MediaTypeOf(parts) != "application/dicom")) {
    res.status = 415;
    res.set_content("STOW-RS takes multipart/related; type=\"application/dicom\"; boundary=…\n",
                    "text/plain; charset=utf-8");
    return absl::OkStatus();
  }
  StowRequest stow(*deps_.ingestor, deps_.exams, who, deps_.staging_dir, deps_.max_object_bytes);
  MultipartReader reader(
      BoundaryOf(type),
      {[&stow](const std::map<std::string, std::string>& h) { return stow.Begin(h); },
       [&stow](absl::string_view data) { return stow.Write(data); },
       [&stow]() { return stow.End(); }});
  const bool read = content(
      [&reader](const char* data, size_t n) { return reader.Feed(absl::string_view(data, n)); });
  if (!read || !reader.finished()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the multipart body is malformed: ",
        reader.error().empty() ? "it ends before its closing boundary" : reader.error(),
        stow.outcomes().empty()
            ? ""
            : absl::StrCat(" (", stow.outcomes().size(), " parts before it were processed)")));
  }
  res.status = stow.HttpStatus();
  res.set_content(stow.ResponseJson(BaseUrl(req)), kDicomJson);
  return absl::OkStatus();
}

}  // namespace rdg::dicomweb
