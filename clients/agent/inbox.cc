#include "clients/agent/inbox.h"

#include <glog/logging.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/clinic/report_folder.h"
#include "clients/common/connection.h"

namespace rdg::agent {
namespace {

constexpr char kCursorKey[] = "inbox_cursor";

std::string FolderName(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out.empty() ? "_" : out;
}

}  // namespace

Inbox::Inbox(const rdg::v1::Inbox& config, std::string ca_path, std::string institution,
             std::shared_ptr<grpc::Channel> channel, Outbox& state, absl::TimeZone zone)
    : config_(config),
      ca_path_(std::move(ca_path)),
      institution_(std::move(institution)),
      stub_(rdg::v1::DeliveryService::NewStub(channel)),
      state_(state),
      zone_(zone) {}

Inbox::~Inbox() { Stop(); }

void Inbox::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Inbox::Stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (watch_ != nullptr) watch_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Inbox::Run() {
  while (!stopping_) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      watch_ = &ctx;
    }
    rdg::v1::WatchReportsRequest req;
    req.set_cursor(state_.GetState(kCursorKey));
    auto reader = stub_->WatchReports(&ctx, req);
    rdg::v1::DeliveredReport d;
    while (reader->Read(&d)) {
      Write(d);
      if (auto s = state_.SetState(kCursorKey, d.cursor()); !s.ok()) {
        LOG(ERROR) << "inbox: cannot save the cursor: " << s;
      }
    }
    const grpc::Status s = reader->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      watch_ = nullptr;
    }
    if (stopping_) return;
    LOG(INFO) << "inbox: report stream ended (" << clients::DescribeRpcError(s)
              << "); reconnecting in " << config_.poll_seconds() << " s";
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, std::chrono::seconds(config_.poll_seconds()),
                   [this] { return stopping_.load(); });
  }
}

void Inbox::Write(const rdg::v1::DeliveredReport& d) {
  namespace fs = std::filesystem;
  const auto& r = d.report();
  const fs::path final_dir = fs::path(config_.dir()) / FolderName(r.content().exam_id()) /
                             absl::StrCat(FolderName(r.report_id()), "-v", r.version());
  std::error_code ec;
  if (fs::exists(final_dir, ec)) return;  // written before the cursor was saved
  // Written beside, then renamed: staff never see half a report.
  const fs::path tmp = fs::path(config_.dir()) / ".incoming" / final_dir.filename();
  fs::remove_all(tmp, ec);
  clients::ReportFolder folder;
  std::string error;
  // The exam the feed delivers the report for (the clinic's own): the signed text must name it.
  const std::string exam = d.exam().exam_id().empty() ? r.content().exam_id() : d.exam().exam_id();
  if (!clients::WriteReportFolder(d, tmp.string(), ca_path_, exam, institution_, zone_, &folder,
                                  &error)) {
    LOG(ERROR) << "inbox: " << error;
    return;
  }
  if (!folder.pdf_error.empty()) {
    LOG(ERROR) << "inbox: report " << r.report_id() << ": no report.pdf: " << folder.pdf_error;
  }
  {
    std::ofstream v(tmp / "VERIFICATION.txt");
    v << (folder.verified ? "VERIFIED: " : "NOT VERIFIED: ") << folder.detail << "\n"
      << "report " << r.report_id() << " version " << r.version() << ", exam "
      << r.content().exam_id() << "\n";
    // The folder is renamed into place: the commands name it where staff will find it.
    clients::ReportFolder placed = folder;
    for (std::string* path : {&placed.text, &placed.signature, &placed.certificate, &placed.receipt,
                              &placed.receipt_signature}) {
      *path = (final_dir / fs::path(*path).filename()).string();
    }
    v << clients::OpensslCommands(placed, ca_path_) << "or: rdg-clinic verify "
      << final_dir.string() << " --verify-ca " << ca_path_ << "\n";
  }
  if (d.urgent()) {
    std::ofstream c(tmp / "CRITICAL.txt");
    // Never another exam's patient beside this result (as on the PDF).
    const rdg::v1::Patient patient =
        d.exam().exam_id() == r.content().exam_id() ? d.exam().patient() : rdg::v1::Patient();
    c << "CRITICAL RESULT: acknowledge by "
      << absl::FormatTime("%Y-%m-%d %H:%M:%S %Z",
                          absl::FromUnixSeconds(d.acknowledge_by().seconds()), zone_)
      << "\n  patient: "
      << (patient.display_name().empty() ? patient.name() : patient.display_name()) << " ("
      << patient.patient_id() << ")\n  impression: " << r.content().impression() << "\n  print: "
      << (folder.pdf.empty() ? "(no report.pdf: " + folder.pdf_error + ")"
                             : std::string("report.pdf"))
      << "\n  rdg-clinic ack " << r.content().exam_id() << "\n";
  }
  fs::create_directories(final_dir.parent_path(), ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) {
    LOG(ERROR) << "inbox: cannot move a report into place: " << ec.message();
    return;
  }
  ++written_;
  LOG(INFO) << "inbox: report " << r.report_id() << " v" << r.version()
            << (folder.verified ? " (verified)" : " (NOT verified)")
            << (d.urgent() ? " CRITICAL" : "");
}

}  // namespace rdg::agent
