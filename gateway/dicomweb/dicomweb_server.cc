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
#include "gateway/dicomweb/accept.h"
#include "gateway/dicomweb/dicom_json.h"
#include "gateway/dicomweb/multipart_reader.h"
#include "gateway/dicomweb/qido.h"
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
constexpr char kExplicitLittleEndian[] = "1.2.840.10008.1.2.1";
constexpr char kImplicitLittleEndian[] = "1.2.840.10008.1.2";

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

//! A 406 answer: the client accepts no form RDG can give.
absl::Status NotAcceptable(httplib::Response& res, absl::string_view what) {
  res.status = 406;
  res.set_content(absl::StrCat(what, "\n"), "text/plain; charset=utf-8");
  return absl::OkStatus();
}

//! Whether the request accepts DICOM JSON (as application/dicom+json or application/json).
bool AcceptsJson(const httplib::Request& req) {
  const std::string accept = req.get_header_value("Accept");
  return AcceptsType(accept, kDicomJson) || AcceptsType(accept, "application/json");
}

//! The media type PS3.18 8.7.3 gives a compressed frame of transfer syntax `uid`, or "".
absl::string_view FrameImageType(absl::string_view uid) {
  static const auto* const kTypes = new std::map<std::string, std::string, std::less<>>{
      {"1.2.840.10008.1.2.4.50", "image/jpeg"}, {"1.2.840.10008.1.2.4.51", "image/jpeg"},
      {"1.2.840.10008.1.2.4.57", "image/jpeg"}, {"1.2.840.10008.1.2.4.70", "image/jpeg"},
      {"1.2.840.10008.1.2.4.80", "image/jls"},  {"1.2.840.10008.1.2.4.81", "image/jls"},
      {"1.2.840.10008.1.2.4.90", "image/jp2"},  {"1.2.840.10008.1.2.4.91", "image/jp2"},
  };
  auto it = kTypes->find(uid);
  return it == kTypes->end() ? absl::string_view() : absl::string_view(it->second);
}

std::string BaseUrl(const httplib::Request& req) {
  return absl::StrCat("https://", req.get_header_value("Host"), "/dicomweb");
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
        res.set_header("Access-Control-Expose-Headers", "Content-Type, Warning, Retry-After");
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

  // STOW-RS, into any study or into the one the path names.
  auto stow = [this, cors, caller](const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& content) {
    cors(req, res);
    absl::StatusOr<auth::Principal> who = caller(req);
    absl::Status allowed =
        who.ok() ? auth::Authorize(*who, auth::Permission::kUpload) : who.status();
    // One upload slot for the whole request, under the limits gRPC uploads share.
    absl::StatusOr<ingest::UploadSlots::Slot> slot = ingest::UploadSlots::Slot();
    if (allowed.ok() && deps_.slots != nullptr) {
      slot = deps_.slots->Acquire(who->institution);
      allowed = slot.status();
    }
    if (!allowed.ok()) {
      // Read (a bounded part of) what the client is sending, so that it reads the
      // refusal rather than a reset connection.
      size_t drained = 0;
      content([&drained](const char*, size_t n) { return (drained += n) < kMaxDrainedBytes; });
      if (absl::IsUnavailable(allowed)) res.set_header("Retry-After", "5");
      Fail(res, allowed);
      return;
    }
    const std::string study = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
    if (absl::Status s = Stow(*who, study, req, res, content); !s.ok()) Fail(res, s);
  };
  s.Post(R"(/dicomweb/studies)", stow);
  s.Post(R"(/dicomweb/studies/([0-9.]+))", stow);

  s.Options(R"(/dicomweb/.*)", [cors](const httplib::Request& req, httplib::Response& res) {
    cors(req, res);
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Accept, Content-Type");
    res.set_header("Access-Control-Max-Age", "600");
    res.status = 204;
  });

  // QIDO-RS: studies, series and instances, at the root or under a study (and series).
  auto search = [this](const auth::Principal& who, const httplib::Request& req,
                       httplib::Response& res, QidoLevel level) -> absl::Status {
    if (!AcceptsJson(req)) return NotAcceptable(res, "QIDO-RS answers application/dicom+json");
    RDG_ASSIGN_OR_RETURN(QidoQuery q, ParseQido(req.params, level));
    std::vector<StudyAccess::Found> exams;
    if (req.matches.size() > 1) {  // under studies/{study}[/series/{series}]
      RDG_ASSIGN_OR_RETURN(storage::ExamRecord exam,
                           deps_.access.Open(who, req.matches[1], "dicomweb_search"));
      exams.push_back({std::move(exam), /*open=*/true});
      q.study_uids = {req.matches[1]};
      if (req.matches.size() > 2) q.series_uids = {req.matches[2]};
    } else {
      RDG_ASSIGN_OR_RETURN(
          exams, deps_.access.Searchable(who, kSearchScope, absl::StrCat("search ", req.target),
                                         /*with_priors=*/level == QidoLevel::kStudy));
    }
    const std::string base = BaseUrl(req);
    std::vector<std::string> found;
    int skipped = 0;
    bool more = false;  //!< the limit cut the answer short
    // One more match found: skipped up to the offset, answered up to the limit; one past it
    // says there is more, and ends the search (true).
    auto take = [&](auto&& json) {
      if (skipped < q.offset) {
        ++skipped;
        return false;
      }
      if (static_cast<int>(found.size()) >= q.limit) return more = true;
      found.push_back(json());
      return false;
    };
    for (const StudyAccess::Found& found_exam : exams) {
      const storage::ExamRecord& e = found_exam.exam;
      if (!UidMatches(q.study_uids, e.study_instance_uid)) continue;  // before reading its objects
      // Series and instances of the studies open to the caller only (a reader: their claims).
      if (level != QidoLevel::kStudy && !found_exam.open) continue;
      RDG_ASSIGN_OR_RETURN(auto objects, deps_.exams.ListObjects(e.exam_id));
      const std::vector<SeriesSummary> series = SeriesOf(objects);
      if (!MatchesStudy(q, e, series)) continue;
      bool full = false;
      if (level == QidoLevel::kStudy) {
        full = take([&] { return StudyJson(e, series, base); });
      }
      for (auto s = series.begin(); level != QidoLevel::kStudy && !full && s != series.end(); ++s) {
        if (!MatchesSeries(q, *s)) continue;
        if (level == QidoLevel::kSeries) {
          full = take([&] { return SeriesJson(e, *s, base); });
          continue;
        }
        for (const storage::ObjectRecord* o : s->instances) {
          if (full) break;
          if (MatchesInstance(q, *o)) full = take([&] { return InstanceJson(e, *o, base); });
        }
      }
      if (full) break;
    }
    if (std::string warning = IgnoredKeysWarning(q); !warning.empty()) {
      res.set_header("Warning", warning);
    }
    if (more) {  // PS3.18 8.3.4.4
      res.set_header("Warning",
                     "299 rdg \"There are additional results that can be requested "
                     "(offset, limit)\"");
    }
    res.set_content(absl::StrCat("[", absl::StrJoin(found, ","), "]"), kDicomJson);
    return absl::OkStatus();
  };
  auto at = [search](QidoLevel level) {
    return [search, level](const auth::Principal& who, const httplib::Request& req,
                           httplib::Response& res) { return search(who, req, res, level); };
  };
  s.Get(R"(/dicomweb/studies)", serve(at(QidoLevel::kStudy)));
  s.Get(R"(/dicomweb/series)", serve(at(QidoLevel::kSeries)));
  s.Get(R"(/dicomweb/instances)", serve(at(QidoLevel::kInstance)));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series)", serve(at(QidoLevel::kSeries)));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/instances)", serve(at(QidoLevel::kInstance)));
  s.Get(R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances)",
        serve(at(QidoLevel::kInstance)));

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
    RDG_ASSIGN_OR_RETURN(auto selected, select(who, req, "dicomweb_retrieve"));
    auto parts = std::make_shared<std::vector<Part>>();
    for (const auto& o : selected.second) {
      // Instances go as stored: a client that asks for another transfer syntax is told so.
      if (!AcceptsMultipart(req.get_header_value("Accept"), "application/dicom",
                            o.transfer_syntax_uid)) {
        return NotAcceptable(
            res, absl::StrCat("instance ", o.sop_instance_uid, " is stored in transfer syntax ",
                              o.transfer_syntax_uid,
                              " and RDG does not transcode: ask for multipart/related; "
                              "type=\"application/dicom\"; transfer-syntax=*"));
      }
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
    if (!AcceptsJson(req)) {
      return NotAcceptable(res, "metadata is answered as application/dicom+json");
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

  // WADO-RS: frames of an instance (native or compressed, as stored), as OHIF's "wadors" mode
  // reads them.
  s.Get(
      R"(/dicomweb/studies/([0-9.]+)/series/([0-9.]+)/instances/([0-9.]+)/frames/([0-9,]+))",
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
        RDG_ASSIGN_OR_RETURN(std::shared_ptr<FrameSource> source, FrameSource::Open(path));
        // Every frame found before the answer begins (no pixel data read yet): a frame that is
        // not there or cannot be told apart is an answer, not a cut connection.
        for (int n : numbers) {
          if (n < 1) return absl::InvalidArgumentError("frame numbers start at 1");
          RDG_RETURN_IF_ERROR(source->Locate(n));
        }
        // Each frame as stored: application/octet-stream naming its transfer syntax (native
        // frames are the same bytes in either little-endian syntax), or the image type of a
        // compressed one when that is what the client asks for.
        const std::string accept = req.get_header_value("Accept");
        std::string syntax = source->transfer_syntax_uid();
        std::string part_type = "application/octet-stream";
        if (!AcceptsMultipart(accept, part_type, syntax)) {
          if (syntax == kExplicitLittleEndian &&
              AcceptsMultipart(accept, part_type, kImplicitLittleEndian)) {
            syntax = kImplicitLittleEndian;
          } else {
            part_type = std::string(FrameImageType(syntax));
            if (part_type.empty() || !AcceptsMultipart(accept, part_type, syntax)) {
              return NotAcceptable(
                  res, absl::StrCat("the frames are in transfer syntax ", syntax,
                                    " and RDG does not transcode: ask for multipart/related; "
                                    "type=\"application/octet-stream\"; transfer-syntax=*"));
            }
          }
        }
        // The first frame now (an unreadable file is an answer too); each of the others read as
        // it is sent: one frame in memory at a time.
        auto first = std::make_shared<absl::StatusOr<std::string>>(source->Read(numbers[0]));
        if (!first->ok()) return first->status();
        const std::string boundary = "rdg-" + storage::RandomHex(12);
        const std::string part_header =
            absl::StrCat("--", boundary, "\r\nContent-Type: ", part_type,
                         "; transfer-syntax=", syntax, "\r\n\r\n");
        auto next = std::make_shared<size_t>(0);
        res.set_chunked_content_provider(
            absl::StrCat("multipart/related; type=\"", part_type, "\"; boundary=", boundary),
            [source, numbers, first, next, boundary, part_header](size_t, httplib::DataSink& sink) {
              if (*next == numbers.size()) {
                const std::string end = absl::StrCat("--", boundary, "--\r\n");
                sink.write(end.data(), end.size());
                sink.done();
                return true;
              }
              absl::StatusOr<std::string> frame =
                  *next == 0 ? std::move(*first) : source->Read(numbers[*next]);
              if (!frame.ok()) {
                LOG(ERROR) << "DICOMweb: " << frame.status();
                return false;  // the connection is cut: the client sees an incomplete answer
              }
              sink.write(part_header.data(), part_header.size());
              sink.write(frame->data(), frame->size());
              sink.write("\r\n", 2);
              ++*next;
              return true;
            });
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
        RDG_ASSIGN_OR_RETURN(std::shared_ptr<BulkValue> value,
                             BulkValue::Open(path, static_cast<uint16_t>(tag >> 16),
                                             static_cast<uint16_t>(tag & 0xFFFF)));
        // Streamed a chunk at a time from the file, as an instance is.
        const std::string boundary = "rdg-" + storage::RandomHex(12);
        auto offset = std::make_shared<int64_t>(-1);  // -1: the part's header is next
        auto buffer = std::make_shared<std::string>();
        res.set_chunked_content_provider(
            absl::StrCat("multipart/related; type=\"application/octet-stream\"; boundary=",
                         boundary),
            [value, offset, buffer, boundary](size_t, httplib::DataSink& sink) {
              if (*offset < 0) {
                const std::string header = absl::StrCat(
                    "--", boundary, "\r\nContent-Type: application/octet-stream\r\n\r\n");
                sink.write(header.data(), header.size());
                *offset = 0;
                return true;
              }
              const uint32_t at = static_cast<uint32_t>(*offset);
              if (at == value->size()) {
                const std::string end = absl::StrCat("\r\n--", boundary, "--\r\n");
                sink.write(end.data(), end.size());
                sink.done();
                return true;
              }
              const uint32_t n = std::min<uint32_t>(kChunk, value->size() - at);
              buffer->resize(n);
              if (absl::Status s = value->ReadAt(at, buffer->data(), n); !s.ok()) {
                LOG(ERROR) << "DICOMweb: " << s;
                return false;  // the connection is cut: the client sees an incomplete answer
              }
              sink.write(buffer->data(), n);
              *offset += n;
              return true;
            });
        return absl::OkStatus();
      }));
}

absl::Status DicomWebServer::Stow(const auth::Principal& who, const std::string& study,
                                  const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& content) {
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
  StowRequest stow(*deps_.ingestor, deps_.exams, who, deps_.staging_dir, deps_.max_object_bytes,
                   study);
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
  if (res.status == 503) res.set_header("Retry-After", "5");
  res.set_content(stow.ResponseJson(BaseUrl(req)), kDicomJson);
  return absl::OkStatus();
}

}  // namespace rdg::dicomweb
