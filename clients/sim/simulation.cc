#include "clients/sim/simulation.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <queue>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/common/connection.h"
#include "clients/common/object_upload.h"
#include "clients/common/report_crypto.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "rdg/v1/ingest.grpc.pb.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/digest.h"
#include "storage/base/worker_pool.h"

namespace rdg::sim {

// ---------------------------------------------------------------------------------------------
// SimClock

SimClock::SimClock(std::string offset_file, double speed)
    : path_(std::move(offset_file)), speed_(speed) {
  if (!path_.empty()) {
    std::ifstream in(path_);
    if (!(in >> start_offset_)) start_offset_ = 0;
  }
  start_steady_ = std::chrono::steady_clock::now();
  start_wall_ = absl::Now();
}

absl::Time SimClock::Now() const {
  const auto elapsed = absl::FromChrono(std::chrono::steady_clock::now() - start_steady_);
  return start_wall_ + absl::Seconds(start_offset_) + elapsed * speed_;
}

void SimClock::Publish() const {
  if (path_.empty()) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_steady_).count();
  const std::string tmp = path_ + ".sim.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << absl::StrFormat("%.3f\n", start_offset_ + elapsed * (speed_ - 1));
  }
  std::error_code error;  // a failed write is retried on the next call, never fatal
  std::filesystem::rename(tmp, path_, error);  // atomic: the gateway reads whole values only
}

void SimClock::SleepUntil(absl::Time t) const {
  const absl::Duration left = t - Now();
  if (left > absl::ZeroDuration()) absl::SleepFor(Real(left));
}

namespace {

using Clock = std::chrono::steady_clock;

//! Stops every loop when the run is over.
struct Run {
  std::atomic<bool> stop{false};
};

std::shared_ptr<grpc::Channel> Channel(const Options& o, const Identity& who) {
  clients::ConnectionOptions c{o.gateway, o.ca, who.cert, who.key};
  return c.Connect();
}

std::unique_ptr<grpc::ClientContext> Context(int seconds = 30) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

std::string NewUid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Exams

struct Exam {
  std::string type;  //!< CT, DX, US, ECG, LAB
  rdg::v1::Priority priority = rdg::v1::ROUTINE;
  size_t clinic = 0;
  int patient = 0;
};

//! Makes each exam's object from a template (new UIDs, patient, dates) or, for LAB, an HL7 ORU.
class ExamFactory {
 public:
  ExamFactory(const std::string& templates, std::string workdir)
      : ct_(templates + "/CT_small.dcm"),
        ecg_(templates + "/waveform_ecg.dcm"),
        workdir_(std::move(workdir)) {}

  bool Check(std::string* error) const {
    for (const auto& p : {ct_, ecg_}) {
      if (!std::filesystem::exists(p)) {
        *error = absl::StrCat("template ", p,
                              " is missing (install python3-pydicom, or give "
                              "--templates DIR with CT_small.dcm and waveform_ecg.dcm)");
        return false;
      }
    }
    return true;
  }

  //! The object to upload; false with `error` on failure.
  bool Make(const Exam& exam, const std::string& clinic_id, absl::Time now, uint64_t n,
            clients::ObjectSource* out, std::string* error) {
    out->priority = exam.priority;
    const std::string date = absl::FormatTime("%Y%m%d", now, absl::LocalTimeZone());
    const std::string time = absl::FormatTime("%H%M%S", now, absl::LocalTimeZone());
    const std::string patient = absl::StrFormat("SIM-%s-%05d", clinic_id, exam.patient);
    if (exam.type == "LAB") {
      out->kind = rdg::v1::HL7V2_LAB;
      out->data = Hl7(exam, clinic_id, patient, date + time, n);
      out->size = static_cast<int64_t>(out->data->size());
      out->sha256 = storage::ToRaw(storage::Sha256::Of(*out->data));
      return true;
    }
    DcmFileFormat file;
    if (!file.loadFile((exam.type == "ECG" ? ecg_ : ct_).c_str()).good()) {
      *error = "cannot read a DICOM template";
      return false;
    }
    DcmDataset* ds = file.getDataset();
    const std::string sop = NewUid();
    if (exam.type == "DX" || exam.type == "US") {
      const char* cls = exam.type == "DX" ? UID_DigitalXRayImageStorageForPresentation
                                          : UID_UltrasoundImageStorage;
      ds->putAndInsertString(DCM_SOPClassUID, cls);
      file.getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPClassUID, cls);
      ds->putAndInsertString(DCM_Modality, exam.type.c_str());
    }
    ds->putAndInsertString(DCM_StudyInstanceUID, NewUid().c_str());
    ds->putAndInsertString(DCM_SeriesInstanceUID, NewUid().c_str());
    ds->putAndInsertString(DCM_SOPInstanceUID, sop.c_str());
    file.getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPInstanceUID, sop.c_str());
    ds->putAndInsertString(DCM_PatientID, patient.c_str());
    ds->putAndInsertString(DCM_PatientName, absl::StrCat("Sim^Patient", exam.patient).c_str());
    ds->putAndInsertString(DCM_AccessionNumber, absl::StrFormat("A%08d", n).c_str());
    ds->putAndInsertString(DCM_StudyDate, date.c_str());
    ds->putAndInsertString(DCM_StudyTime, time.c_str());
    out->kind = rdg::v1::DICOM;
    out->path = absl::StrCat(workdir_, "/", sop, ".dcm");
    if (!file.saveFile(out->path.c_str(), EXS_Unknown).good()) {
      *error = absl::StrCat("cannot write ", out->path);
      return false;
    }
    auto sha = storage::Sha256::OfFile(out->path);
    if (!sha.ok()) {
      *error = absl::StrCat("cannot read back ", out->path);
      return false;
    }
    out->sha256 = storage::ToRaw(*sha);
    out->size = static_cast<int64_t>(std::filesystem::file_size(out->path));
    return true;
  }

 private:
  static std::string Hl7(const Exam& exam, const std::string& clinic, const std::string& patient,
                         const std::string& ts, uint64_t n) {
    // A potassium/sodium panel; a STAT lab is sometimes critical (HH potassium).
    const bool critical = exam.priority == rdg::v1::STAT && n % 3 == 0;
    const std::string control = absl::StrFormat("SIM%s%010d", clinic, n);
    std::string m = absl::StrCat(
        "MSH|^~\\&|LIS|", clinic, "|RDG|COUNTY|", ts, "||ORU^R01^ORU_R01|", control, "|P|2.5.1\r",
        "PID|1||", patient, "^^^", clinic, "^MR||Sim^Patient", exam.patient, "||19600101|M\r",
        "ORC|RE|PL-", n, "|F-", n, "\r", "OBR|1|PL-", n, "|F-", n, "|LYTES^Electrolytes|||", ts,
        "|||||||||||||||||F\r", "OBX|1|NM|2823-3^Potassium^LN||", critical ? "6.9" : "4.2",
        "|mmol/L|3.5-5.3|", critical ? "HH" : "N", "|||F|||", ts, "\r",
        "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|137-147|N|||F|||", ts, "\r");
    return m;
  }

  const std::string ct_, ecg_, workdir_;
};

// ---------------------------------------------------------------------------------------------
// A small job queue for the uploads (arrivals must not wait for a slow upload).

double Exponential(std::mt19937_64& rng, double mean) {
  return std::exponential_distribution<double>(1.0 / mean)(rng);
}

//! Relative arrival rate by hour of day: clinics are busiest in the morning and afternoon.
double DayShape(absl::Time t) {
  const int hour = absl::ToCivilHour(t, absl::LocalTimeZone()).hour();
  static constexpr double kShape[24] = {0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6,  1.2,
                                        2.0, 2.2,  2.1, 1.8, 1.2,  1.5, 1.9,  1.9,
                                        1.7, 1.4,  1.0, 0.8, 0.6,  0.5, 0.35, 0.25};
  return kShape[hour];
}
constexpr double kShapeMax = 2.2;

// ---------------------------------------------------------------------------------------------
// Actors

class Simulation {
 public:
  Simulation(const Options& o, const SimClock& clock, std::string workdir)
      : o_(o), clock_(clock), factory_(o.templates, workdir), rng_(o.seed) {}

  int Go() {
    std::string error;
    if (!factory_.Check(&error)) {
      std::cerr << "rdg-sim: " << error << "\n";
      return 2;
    }
    for (const auto& c : o_.clinics) {
      auto ch = Channel(o_, c);
      if (!ch) return 2;
      clinic_channels_.push_back(ch);
    }
    std::vector<std::thread> threads;
    threads.emplace_back([this] {
      while (!run_.stop) {
        clock_.Publish();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    uint32_t seed = o_.seed;
    for (const auto& r : o_.readers) {
      auto ch = Channel(o_, r);
      if (!ch) return 2;
      for (int d = 0; d < o_.desks; ++d) {
        threads.emplace_back([this, ch, r, s = ++seed] { Desk(ch, r, s); });
      }
    }
    for (size_t i = 0; i < o_.clinics.size(); ++i) {
      threads.emplace_back([this, i, s = ++seed] { Acknowledger(i, s); });
    }
    {
      WorkerPool uploads(4);
      Arrivals(uploads);
    }  // every upload done
    // The day ends with its backlog in place (exams waiting, being read, breaches open): what
    // the dashboard shows at that moment.
    run_.stop = true;
    for (auto& t : threads) t.join();
    clock_.Publish();
    std::cout << absl::StrFormat(
        "rdg-sim: %.0f simulated hours at %.0fx: %d exams uploaded (%d failed), %d claimed, %d "
        "final reports (%d refused), %d acknowledged; gateway clock now %s\n",
        o_.hours, o_.speed, totals_.uploaded.load(), totals_.upload_failures.load(),
        totals_.claimed.load(), totals_.reported.load(), totals_.report_failures.load(),
        totals_.acknowledged.load(),
        absl::FormatTime("%Y-%m-%d %H:%M", clock_.Now(), absl::LocalTimeZone()));
    return totals_.uploaded.load() > 0 && totals_.report_failures.load() == 0 ? 0 : 1;
  }

 private:
  void Arrivals(WorkerPool& uploads) {
    const absl::Time end = clock_.Now() + absl::Hours(o_.hours);
    const double peak_rate = o_.exams_per_day / 86400.0 * kShapeMax;  // per simulated second
    double total_mix = 0;
    for (const auto& [t, w] : o_.mix) total_mix += w;
    absl::Time t = clock_.Now();
    uint64_t n = static_cast<uint64_t>(absl::ToUnixSeconds(t)) * 1000;
    for (;;) {
      // Thinning: a Poisson process at the peak rate, each arrival kept with the hour's shape.
      t += absl::Seconds(Exponential(rng_, 1.0 / peak_rate));
      if (t >= end) break;
      if (std::uniform_real_distribution<double>(0, kShapeMax)(rng_) > DayShape(t)) continue;
      Exam exam;
      double pick = std::uniform_real_distribution<double>(0, total_mix)(rng_);
      for (const auto& [type, w] : o_.mix) {
        exam.type = type;
        if ((pick -= w) < 0) break;
      }
      const double p = std::uniform_real_distribution<double>(0, 1)(rng_);
      exam.priority = p < o_.stat_share                     ? rdg::v1::STAT
                      : p < o_.stat_share + o_.urgent_share ? rdg::v1::URGENT
                                                            : rdg::v1::ROUTINE;
      exam.clinic = std::uniform_int_distribution<size_t>(0, o_.clinics.size() - 1)(rng_);
      exam.patient = std::uniform_int_distribution<int>(1, 5000)(rng_);
      clock_.SleepUntil(t);
      const uint64_t id = ++n;
      uploads.Post([this, exam, id] { Upload(exam, id); });
    }
  }

  void Upload(const Exam& exam, uint64_t n) {
    clients::ObjectSource source;
    std::string error;
    const Identity& clinic = o_.clinics[exam.clinic];
    std::string institution, user;
    clients::CertificateIdentity(clinic.cert, &institution, &user, &error);
    if (!factory_.Make(exam, institution, clock_.Now(), n, &source, &error)) {
      std::cerr << "rdg-sim: " << error << "\n";
      ++totals_.upload_failures;
      return;
    }
    auto stub = rdg::v1::IngestService::NewStub(clinic_channels_[exam.clinic]);
    clients::RateLimiter unlimited(0);
    grpc::Status status;
    for (int attempt = 0; attempt < 5; ++attempt) {
      clients::ObjectUpload upload(*stub, unlimited, 4 << 20);
      clients::UploadOutcome outcome;
      status = upload.Attempt(source, outcome);
      if (status.ok() || !clients::Retryable(status.error_code())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!source.path.empty()) std::filesystem::remove(source.path);
    if (status.ok()) {
      ++totals_.uploaded;
    } else {
      ++totals_.upload_failures;
      std::cerr << "rdg-sim: " << clinic.name << " upload of a " << exam.type
                << " refused: " << clients::DescribeRpcError(status) << "\n";
    }
  }

  //! One reading desk: pick the most urgent unclaimed exam, wait as a busy reader would, claim,
  //! read, sign a final report.
  void Desk(std::shared_ptr<grpc::Channel> channel, const Identity& reader, uint32_t seed) {
    std::mt19937_64 rng(seed);
    auto stub = rdg::v1::ReadingService::NewStub(channel);
    std::string institution, user, error;
    if (!clients::CertificateIdentity(reader.sign_cert, &institution, &user, &error)) {
      std::cerr << "rdg-sim: " << error << "\n";
      return;
    }
    bool idle = true;  // a reader with nothing to do notices new work only after a while
    while (!run_.stop) {
      rdg::v1::WorklistRequest req;
      req.set_page_size(20);
      rdg::v1::WorklistResponse resp;
      auto ctx = Context();
      const rdg::v1::WorklistItem* next = nullptr;
      if (stub->GetWorklist(ctx.get(), req, &resp).ok()) {
        for (const auto& item : resp.items()) {
          if (!item.has_claim() && item.exam().state() == rdg::v1::ROUTED) {
            next = &item;
            break;
          }
        }
      }
      if (next == nullptr) {
        idle = true;
        Pause(absl::Minutes(2));
        continue;
      }
      const rdg::v1::Exam exam = next->exam();
      const double scale = exam.priority() == rdg::v1::STAT     ? 0.1
                           : exam.priority() == rdg::v1::URGENT ? 0.4
                                                                : 1.0;
      // From idle: the time to notice the exam; with a backlog, a minute between exams.
      Pause(absl::Minutes(Exponential(rng, idle ? o_.pickup_minutes * scale : 1.0)));
      idle = false;
      rdg::v1::ClaimRequest claim;
      claim.set_exam_id(exam.exam_id());
      rdg::v1::Claim claimed;
      auto cctx = Context();
      if (!stub->ClaimExam(cctx.get(), claim, &claimed).ok()) continue;  // another desk was first
      ++totals_.claimed;
      auto it = o_.read_minutes.find(exam.exam_type());
      const double mean = it == o_.read_minutes.end() ? 8 : it->second;
      // Reading; the lease is renewed every 5 minutes, as rdg-reader's users do for long reads.
      absl::Duration left = absl::Minutes(std::max(0.5, Exponential(rng, mean)));
      bool held = true;
      while (held && left > absl::ZeroDuration() && !run_.stop) {
        const absl::Duration step = std::min(left, absl::Minutes(5));
        Pause(step);
        left -= step;
        if (left > absl::ZeroDuration()) {
          auto rctx = Context();
          held = stub->RenewClaim(rctx.get(), claim, &claimed).ok();
        }
      }
      if (held && !run_.stop) Report(*stub, exam, institution, user, reader, rng);
    }
  }

  void Report(rdg::v1::ReadingService::Stub& stub, const rdg::v1::Exam& exam,
              const std::string& institution, const std::string& user, const Identity& reader,
              std::mt19937_64& rng) {
    rdg::v1::SubmitReportRequest req;
    auto* c = req.mutable_content();
    c->set_exam_id(exam.exam_id());
    c->set_status(rdg::v1::FINAL_REPORT);
    c->set_reader_user(user);
    c->set_reader_institution(institution);
    const bool critical = std::uniform_real_distribution<double>(0, 1)(rng) < o_.critical_share;
    c->set_critical(critical);
    c->set_findings(absl::StrCat("Simulated ", exam.exam_type(), " read."));
    c->set_impression(critical ? "Critical finding: call the clinic." : "No acute abnormality.");
    // The desk the report names: where the gateway says this reader reads the exam.
    rdg::v1::GetReportsRequest where;
    where.set_exam_id(exam.exam_id());
    rdg::v1::GetReportsResponse reports;
    auto wctx = Context();
    if (auto s = stub.GetReports(wctx.get(), where, &reports); !s.ok()) {
      // As below: a lease lost or an exam escalated away in compressed time is normal.
      if (s.error_code() != grpc::StatusCode::PERMISSION_DENIED &&
          s.error_code() != grpc::StatusCode::NOT_FOUND) {
        ++totals_.report_failures;
        std::cerr << "rdg-sim: reports of " << exam.exam_id() << ": "
                  << clients::DescribeRpcError(s) << "\n";
      }
      return;
    }
    c->set_desk(reports.desk());
    c->mutable_signed_at()->set_seconds(absl::ToUnixSeconds(clock_.Now()));
    req.set_canonical_bytes(rdg::v1::CanonicalReportBytes(*c));
    std::string error;
    if (!clients::SignReport(req.canonical_bytes(), reader.sign_key, reader.sign_cert,
                             req.mutable_signature(), &error)) {
      std::cerr << "rdg-sim: " << error << "\n";
      ++totals_.report_failures;
      return;
    }
    rdg::v1::ReportVersion accepted;
    auto ctx = Context();
    auto s = stub.SubmitReport(ctx.get(), req, &accepted);
    if (s.ok()) {
      ++totals_.reported;
      return;
    }
    // The lease was lost (FAILED_PRECONDITION), or, its lease lapsed in compressed time, the
    // exam was escalated out of the reader's queues (NOT_FOUND): both normal in a simulated day.
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        s.error_code() == grpc::StatusCode::NOT_FOUND) {
      return;
    }
    ++totals_.report_failures;
    std::cerr << "rdg-sim: report on " << exam.exam_id()
              << " refused: " << clients::DescribeRpcError(s) << "\n";
  }

  //! A clinic: polls its delivered reports and acknowledges each after a while (critical ones
  //! soon).
  void Acknowledger(size_t i, uint32_t seed) {
    std::mt19937_64 rng(seed);
    auto stub = rdg::v1::DeliveryService::NewStub(clinic_channels_[i]);
    using Due = std::pair<absl::Time, std::string>;
    std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
    std::string cursor;
    while (!run_.stop) {
      rdg::v1::WatchReportsRequest req;
      req.set_cursor(cursor);
      req.set_max_reports(100);
      rdg::v1::PollReportsResponse resp;
      auto ctx = Context();
      if (stub->PollReports(ctx.get(), req, &resp).ok()) {
        for (const auto& r : resp.reports()) {
          if (r.acknowledged()) continue;
          const double mean = o_.ack_minutes * (r.urgent() ? 0.15 : 1.0);
          due.emplace(clock_.Now() + absl::Minutes(Exponential(rng, mean)), r.report().report_id());
        }
        if (!resp.next_cursor().empty()) cursor = resp.next_cursor();
      }
      while (!due.empty() && due.top().first <= clock_.Now()) {
        rdg::v1::AcknowledgeRequest ack;
        ack.set_report_id(due.top().second);
        rdg::v1::AcknowledgeResponse done;
        auto actx = Context();
        if (stub->AcknowledgeReport(actx.get(), ack, &done).ok()) ++totals_.acknowledged;
        due.pop();
      }
      Pause(absl::Minutes(2));
    }
  }

  //! Waits `simulated` time, or less when the run stops.
  void Pause(absl::Duration simulated) const {
    const absl::Time until = clock_.Now() + simulated;
    while (!run_.stop && clock_.Now() < until) {
      absl::SleepFor(std::min(absl::Milliseconds(100), clock_.Real(until - clock_.Now())));
    }
  }

  const Options& o_;
  const SimClock& clock_;
  ExamFactory factory_;
  std::mt19937_64 rng_;
  Run run_;
  Totals totals_;
  std::vector<std::shared_ptr<grpc::Channel>> clinic_channels_;
};

}  // namespace

int Run(const Options& options) {
  char tmpl[] = "/tmp/rdg-sim-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::cerr << "rdg-sim: cannot create a temporary directory\n";
    return 2;
  }
  SimClock clock(options.clock_offset_file, options.speed);
  int code = Simulation(options, clock, tmpl).Go();
  std::filesystem::remove_all(tmpl);
  return code;
}

}  // namespace rdg::sim
