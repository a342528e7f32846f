#include "clients/agent/dicom_receiver.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <glog/logging.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/agent/agent_config.h"
#include "clients/agent/tcp_server.h"
#include "clients/agent/tls_tunnel.h"
#include "storage/base/posix_file.h"

namespace rdg::agent {
namespace {

//! What every association worker needs. DCMTK's pool constructs workers itself (default
//! constructor), so they find it here; one receiver per process.
struct ReceiverContext {
  Outbox* outbox = nullptr;
  const ObjectCheck* check = nullptr;
  std::atomic<int64_t>* received = nullptr;
  std::atomic<int64_t>* refused = nullptr;
  std::vector<std::string> allowed_calling;
  std::string ae_title;
};
std::atomic<ReceiverContext*> g_context{nullptr};

//! A C-STORE's answer: STATUS_Success, or a refusal status and its reason.
struct Refusal {
  Uint16 status = STATUS_Success;
  std::string reason;
};

//! The Error Comment (0000,0902) for a reason: LO, so at most 64 characters of the default
//! repertoire without backslash. Long common openings are shortened so the point survives.
std::string ErrorComment(std::string reason) {
  for (const auto& [opening, shorter] : std::initializer_list<std::pair<const char*, const char*>>{
           {"the file could not be parsed safely: ", "unsafe to parse: "},
           {"the DICOM file's structure is broken: ", "broken: "},
           {"the DICOM file ", ""}}) {
    if (absl::StartsWith(reason, opening)) reason = shorter + reason.substr(strlen(opening));
  }
  reason.resize(std::min<size_t>(reason.size(), 64));
  for (char& c : reason) {
    if (c < 0x20 || c > 0x7E || c == '\\') c = '?';
  }
  return reason;
}

//! Checks a received object as the gateway will (size, parser) and against the request that
//! carried it (SOP class and instance, when the data set names them).
Refusal CheckReceived(const ObjectCheck& check, const std::string& path,
                      const T_DIMSE_C_StoreRQ& rq) {
  absl::StatusOr<parsing::ParsedObject> parsed = check.Check(rdg::v1::DICOM, path, absl::Now(), "");
  if (absl::IsInvalidArgument(parsed.status())) {
    return {STATUS_STORE_Error_CannotUnderstand, std::string(parsed.status().message())};
  }
  if (!parsed.ok()) {  // too large, or the check could not run now
    return {STATUS_STORE_Refused_OutOfResources, std::string(parsed.status().message())};
  }
  const std::string& sop_class = parsed->object.sop_class_uid;
  if (!sop_class.empty() && sop_class != rq.AffectedSOPClassUID) {
    return {STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
            "the data set's SOP Class UID differs from the request's"};
  }
  if (parsed->object.sop_instance_uid != rq.AffectedSOPInstanceUID) {
    return {STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
            "the data set's SOP Instance UID differs from the request's"};
  }
  return {};
}

//! Whether a failed receive failed on this side's file (disk full, no permission) rather than
//! on the network. DCMTK reports those as DIMSEC_OUTOFRESOURCES after reading the rest of the
//! data set (DIMSE_ignoreDataSet), or as the file stream's own error when closing the file
//! (everything was received by then); either way the association is still usable.
bool LocalWriteFailure(const OFCondition& cond) {
  return (cond.module() == OFM_dcmnet && cond.code() == DIMSEC_OUTOFRESOURCES) ||
         cond.module() == OFM_dcmdata;
}

//! The Error Comment when the agent cannot keep what it received.
constexpr char kCannotWrite[] = "agent cannot write to its disk; send again";
//! ... and when it wrote it but could not make it durable or queue it.
constexpr char kCannotKeep[] = "the agent could not store it; send it again";

//! Whether the filesystem holding `path` has (almost) no room left. DCMTK 3.6.7 does not check
//! the final flush when it closes a received file, so on a full disk the file can lose its last
//! few KiB without any error: what then fails the check is the disk, not the object.
bool NearlyFull(const std::string& path) {
  struct statvfs fs {};
  const std::string dir = path.substr(0, path.find_last_of('/'));
  return statvfs(dir.c_str(), &fs) == 0 &&
         static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (uint64_t{1} << 20);
}

class StoreWorker : public DcmThreadSCP {
 protected:
  OFCondition handleIncomingCommand(T_DIMSE_Message* msg,
                                    const DcmPresentationContextInfo& info) override {
    if (msg->CommandField != DIMSE_C_STORE_RQ) {
      return DcmThreadSCP::handleIncomingCommand(msg, info);  // C-ECHO and refusals
    }
    ReceiverContext* ctx = g_context.load();
    T_DIMSE_C_StoreRQ& rq = msg->msg.CStoreRQ;
    const std::string path = ctx->outbox->NewObjectPath(rdg::v1::DICOM);
    // Streams the dataset to the file exactly as received, behind a Part 10 meta header.
    OFCondition cond = receiveSTORERequest(rq, info.presentationContextID, OFString(path.c_str()));
    if (cond.bad()) {
      (void)storage::RemoveFile(path);
      if (LocalWriteFailure(cond)) {
        // DCMTK read the rest of the data set and dropped it: the association is still in step,
        // so the device hears "out of resources" for this object and may send the next.
        ++*ctx->refused;
        LOG(ERROR) << "dicom: cannot write a C-STORE from " << getPeerAETitle().c_str()
                   << " to the outbox (disk full?): " << cond.text();
        return SendStoreResponse(info.presentationContextID, rq,
                                 {STATUS_STORE_Refused_OutOfResources, kCannotWrite});
      }
      LOG(WARNING) << "dicom: receiving a C-STORE from " << getPeerAETitle().c_str()
                   << " failed: " << cond.text();
      return cond;
    }
    // The bytes are made durable and hashed while the parser process checks them.
    absl::StatusOr<PreparedObject> prepared = absl::UnknownError("not prepared");
    Refusal refusal;
    {
      std::optional<std::thread> preparing;
      try {
        preparing.emplace([&] { prepared = ctx->outbox->Prepare(path); });
      } catch (const std::system_error&) {  // no thread to be had: one after the other
      }
      refusal = CheckReceived(*ctx->check, path, rq);
      if (preparing) {
        preparing->join();
      } else {
        prepared = ctx->outbox->Prepare(path);
      }
    }
    if (!prepared.ok()) {  // whatever the check found: the agent cannot keep it now
      (void)storage::RemoveFile(path);
      ++*ctx->refused;
      LOG(ERROR) << "dicom: could not make a received object durable: " << prepared.status();
      return SendStoreResponse(info.presentationContextID, rq,
                               {STATUS_STORE_Refused_OutOfResources, kCannotKeep});
    }
    if (refusal.status == STATUS_STORE_Error_CannotUnderstand && NearlyFull(path)) {
      LOG(ERROR) << "dicom: a C-STORE from " << getPeerAETitle().c_str()
                 << " may have been cut short by a full disk; answered as out of resources";
      refusal = {STATUS_STORE_Refused_OutOfResources, kCannotWrite};
    }
    if (refusal.status != STATUS_Success) {
      (void)storage::RemoveFile(path);
      ++*ctx->refused;
      LOG(INFO) << "dicom: refused " << rq.AffectedSOPInstanceUID << " from "
                << getPeerAETitle().c_str() << " with status " << std::hex << refusal.status
                << std::dec << ": " << refusal.reason;
      return SendStoreResponse(info.presentationContextID, rq, refusal);
    }
    absl::StatusOr<int64_t> id =
        ctx->outbox->Commit(*prepared, rdg::v1::DICOM, rq.AffectedSOPInstanceUID,
                            absl::StrCat("dicom ", getPeerAETitle().c_str()), absl::Now());
    if (!id.ok()) {
      ++*ctx->refused;
      LOG(ERROR) << "dicom: could not queue a received object: " << id.status();
      return SendStoreResponse(info.presentationContextID, rq,
                               {STATUS_STORE_Refused_OutOfResources, kCannotKeep});
    }
    ++*ctx->received;
    VLOG(1) << "dicom: outbox item " << *id << " from " << getPeerAETitle().c_str();
    return SendStoreResponse(info.presentationContextID, rq, {STATUS_Success, ""});
  }

  //! The C-STORE response, with the reason as Error Comment (0000,0902) when it is a refusal.
  OFCondition SendStoreResponse(T_ASC_PresentationContextID presentation,
                                const T_DIMSE_C_StoreRQ& rq, const Refusal& refusal) {
    DcmDataset detail;
    const bool with_comment = refusal.status != STATUS_Success && !refusal.reason.empty();
    if (with_comment) {
      detail.putAndInsertString(DCM_ErrorComment, ErrorComment(refusal.reason).c_str());
    }
    return sendSTOREResponse(presentation, rq.MessageID, rq.AffectedSOPClassUID,
                             rq.AffectedSOPInstanceUID, refusal.status,
                             with_comment ? &detail : nullptr);
  }

  OFBool checkCalledAETitleAccepted(const OFString& called) override {
    const bool ok = called == g_context.load()->ae_title.c_str();
    if (!ok) LOG(WARNING) << "dicom: association for called AE '" << called << "' refused";
    return ok;
  }

  OFBool checkCallingAETitleAccepted(const OFString& calling) override {
    const auto& allowed = g_context.load()->allowed_calling;
    const bool ok = allowed.empty() ||
                    std::find(allowed.begin(), allowed.end(), calling.c_str()) != allowed.end();
    if (!ok) LOG(WARNING) << "dicom: association from calling AE '" << calling << "' refused";
    return ok;
  }
};

//! DCMTK reads an already accepted connection from this process-wide setting (its inetd mode)
//! while it receives an association request: one request at a time, like DcmSCPPool's own loop.
std::mutex g_external_socket_mu;

}  // namespace

//! Our own listener in place of DcmSCPPool (which can only bind every interface): it accepts
//! connections on the configured address and runs each association on a thread of its own with
//! DCMTK's DcmThreadSCP, at most `max_associations` at once (more are refused with "local limit
//! exceeded", as DcmSCPPool does). A connection holds DCMTK's process-wide socket handle only
//! once its whole A-ASSOCIATE-RQ has arrived, and at most `max_connections` are open: idle or
//! trickling connections cannot lock devices out.
class DicomReceiver::Pool {
 public:
  Pool(const DcmSCPConfig& config, const rdg::v1::DicomListener& listener)
      : shared_(config),
        max_(listener.max_associations()),
        timeout_(listener.timeout_seconds()),
        associate_timeout_(absl::Seconds(listener.associate_timeout_seconds())),
        max_connections_(listener.max_connections()) {}

  //! Accepts on `listen_fd` until Stop(); with `tls`, every connection is DICOM over TLS.
  void Run(int listen_fd, const TlsServerContext* tls = nullptr) {
    while (!stopping_) {
      threads_.Reap();
      pollfd p{listen_fd, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      if (!MakeRoom(fd)) {
        LOG(WARNING) << "dicom: " << max_connections_
                     << " connections open, every one in an association: connection refused";
        close(fd);
        continue;
      }
      // Nagle's algorithm off (Debian's DCMTK leaves it on): with it, every C-STORE response
      // waits for a delayed ACK, ~40 ms — 20 objects/s.
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      threads_.Spawn([this, fd, tls] { Associate(fd, tls); });
    }
    threads_.JoinAll();
  }
  void Stop() { stopping_ = true; }

 private:
  //! Counts `fd` as open and waiting for its A-ASSOCIATE-RQ. At the cap, first closes the
  //! connection that has waited longest without one (an idle probe, a scanner); false if every
  //! open connection is in an association.
  bool MakeRoom(int fd) {
    absl::MutexLock lock(&connections_mu_);
    if (open_ >= max_connections_) {
      if (waiting_.empty()) return false;
      auto oldest =
          std::min_element(waiting_.begin(), waiting_.end(),
                           [](const auto& a, const auto& b) { return a.second < b.second; });
      // Its thread sees the end of the connection and closes it (and counts it gone).
      LOG(INFO) << "dicom: " << max_connections_ << " connections open: closing one idle for "
                << absl::FormatDuration(absl::Now() - oldest->second) << " to make room";
      shutdown(oldest->first, SHUT_RDWR);
      waiting_.erase(oldest);
    }
    ++open_;
    waiting_.emplace(fd, absl::Now());
    return true;
  }

  //! Waits, without any lock, until the connection's first PDU — an A-ASSOCIATE-RQ of at most
  //! 64 KiB — is entirely in the socket's receive buffer (SO_RCVLOWAT: poll wakes only then), so
  //! that DCMTK, which reads it holding the process-wide socket handle, never waits on the
  //! network for it. False when it does not come within associate_timeout_seconds, is another
  //! PDU or too large, or the connection ended (or was closed to make room).
  bool AwaitAssociateRequest(int fd) {
    const absl::Time deadline = absl::Now() + associate_timeout_;
    auto until_buffered = [&](int bytes) {
      setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes));
      while (!stopping_) {
        const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
        if (left <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        const int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 500)));
        if (ready < 0 && errno != EINTR) return false;
        if (ready > 0) return (p.revents & POLLIN) != 0;
      }
      return false;
    };
    unsigned char header[6];
    if (!until_buffered(6) || recv(fd, header, sizeof(header), MSG_PEEK) != 6 ||
        header[0] != 0x01) {
      return false;
    }
    const uint32_t length = (uint32_t{header[2]} << 24) | (uint32_t{header[3]} << 16) |
                            (uint32_t{header[4]} << 8) | header[5];
    if (length > 64 * 1024 || !until_buffered(static_cast<int>(6 + length))) return false;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    return true;
  }

  //! Runs the association arriving on the accepted socket `fd` (closed on return); with `tls`,
  //! after the TLS handshake, through the tunnel's plaintext side.
  void Associate(int fd, const TlsServerContext* tls) {
    std::unique_ptr<TlsTunnel> tunnel;
    bool requested = false;
    if (tls == nullptr) {
      requested = AwaitAssociateRequest(fd);
    } else if (auto t = tls->Accept(fd, absl::Now() + associate_timeout_); !t.ok()) {
      LOG(WARNING) << "dicom: TLS connection refused: " << t.status().message();
    } else {
      tunnel = *std::move(t);
      VLOG(1) << "dicom: TLS connection from "
              << (tunnel->peer().empty() ? "a device" : tunnel->peer());
      requested = AwaitAssociateRequest(tunnel->plain_fd());
    }
    {
      absl::MutexLock lock(&connections_mu_);
      waiting_.erase(fd);
    }
    if (requested) Serve(tunnel ? tunnel->plain_fd() : fd);
    if (tunnel) {
      const int plain = tunnel->plain_fd();
      shutdown(plain, SHUT_RDWR);  // the relay sees the end, sends close_notify and stops
      tunnel.reset();
      close(plain);
    }
    shutdown(fd, SHUT_RDWR);
    {
      absl::MutexLock lock(&connections_mu_);
      --open_;
    }
    close(fd);
  }

  //! Receives the association (its request already buffered) and serves it.
  void Serve(int fd) {
    // DCMTK gets a duplicate it closes itself; ours is shut down and closed by Associate, so the
    // connection ends on every path (and we never close a descriptor number DCMTK already freed
    // and another thread reused).
    const int dcmtk_fd = dup(fd);
    T_ASC_Network* net = nullptr;
    T_ASC_Association* assoc = nullptr;
    OFCondition c;
    {
      std::lock_guard<std::mutex> lock(g_external_socket_mu);
      dcmExternalSocketHandle.set(dcmtk_fd);
      c = ASC_initializeNetwork(NET_ACCEPTOR, 0, timeout_, &net);
      if (c.good()) {
        c = ASC_receiveAssociation(net, &assoc, ASC_DEFAULTMAXPDU, nullptr, nullptr, OFFalse,
                                   DUL_BLOCK, timeout_);
      }
      dcmExternalSocketHandle.set(-1);
    }
    if (c.good() && ++active_ > max_) {
      LOG(WARNING) << "dicom: association refused, " << max_ << " already running";
      T_ASC_RejectParameters why = {ASC_RESULT_REJECTEDTRANSIENT,
                                    ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
                                    ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED};
      ASC_rejectAssociation(assoc, &why);
      c = EC_IllegalCall;
    } else if (c.good()) {
      StoreWorker worker;
      worker.setSharedConfig(shared_);
      worker.run(assoc);  // negotiates, serves, drops and destroys the association
      assoc = nullptr;
    }
    if (c.good() || c == EC_IllegalCall) --active_;
    if (assoc != nullptr) {
      ASC_dropAssociation(assoc);
      ASC_destroyAssociation(&assoc);
    }
    if (net != nullptr) ASC_dropNetwork(&net);
  }

  const DcmSharedSCPConfig shared_;
  const int max_;
  const int timeout_;
  const absl::Duration associate_timeout_;
  const int max_connections_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  absl::Mutex connections_mu_;
  int open_ ABSL_GUARDED_BY(connections_mu_) = 0;
  //! Connections without a complete A-ASSOCIATE-RQ yet: fd -> accepted at.
  std::map<int, absl::Time> waiting_ ABSL_GUARDED_BY(connections_mu_);
  ConnectionThreads threads_;
};

DicomReceiver::DicomReceiver(const rdg::v1::DicomListener& config, Outbox& outbox,
                             const ObjectCheck& check)
    : config_(config), outbox_(outbox), check_(check) {}

DicomReceiver::~DicomReceiver() { Stop(); }

absl::Status DicomReceiver::Start() {
  auto* ctx = new ReceiverContext{
      &outbox_,
      &check_,
      &received_,
      &refused_,
      {config_.allowed_calling_ae_titles().begin(), config_.allowed_calling_ae_titles().end()},
      config_.ae_title()};
  delete g_context.exchange(ctx);
  auto fd = ListenTcp(config_.listen(), "dicom.listen", &port_);
  if (!fd.ok()) return fd.status();
  listen_fd_ = *fd;
  DcmSCPConfig cfg;
  cfg.setAETitle(config_.ae_title().c_str());
  cfg.setRespondWithCalledAETitle(OFFalse);  // a wrong called AE title is refused
  cfg.setHostLookupEnabled(OFFalse);
  // Non-blocking DIMSE: only then does DCMTK apply the timeout to every read, so an association
  // that falls silent (a device switched off mid-study, a probe) is aborted after
  // timeout_seconds instead of holding one of the max_associations slots.
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  cfg.setDIMSETimeout(static_cast<Uint32>(config_.timeout_seconds()));
  cfg.setACSETimeout(static_cast<Uint32>(config_.timeout_seconds()));
  // Uncompressed syntaxes for everything; compressed ones are accepted as they are (the agent
  // never transcodes: the gateway stores the bytes the device produced).
  OFList<OFString> syntaxes;
  for (const char* ts :
       {UID_LittleEndianExplicitTransferSyntax, UID_BigEndianExplicitTransferSyntax,
        UID_LittleEndianImplicitTransferSyntax, UID_DeflatedExplicitVRLittleEndianTransferSyntax,
        UID_JPEGProcess1TransferSyntax, UID_JPEGProcess2_4TransferSyntax,
        UID_JPEGProcess14SV1TransferSyntax, UID_JPEGLSLosslessTransferSyntax,
        UID_JPEGLSLossyTransferSyntax, UID_JPEG2000LosslessOnlyTransferSyntax,
        UID_JPEG2000TransferSyntax, UID_RLELosslessTransferSyntax,
        UID_MPEG2MainProfileAtMainLevelTransferSyntax,
        UID_MPEG4HighProfileLevel4_1TransferSyntax}) {
    syntaxes.push_back(ts);
  }
  OFList<OFString> echo_syntaxes;
  echo_syntaxes.push_back(UID_LittleEndianExplicitTransferSyntax);
  echo_syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
  echo_syntaxes.push_back(UID_BigEndianExplicitTransferSyntax);
  if (OFCondition c = cfg.addPresentationContext(UID_VerificationSOPClass, echo_syntaxes);
      c.bad()) {
    return absl::InternalError(absl::StrCat("dicom: ", c.text()));
  }
  for (const auto& sop : config_.sop_classes()) {
    if (OFCondition c = cfg.addPresentationContext(SopClassUid(sop).c_str(), syntaxes); c.bad()) {
      return absl::InternalError(absl::StrCat("dicom: ", c.text()));
    }
  }
  if (const auto& tls = config_.tls(); !tls.listen().empty()) {
    auto context = TlsServerContext::Create(tls.certificate(), tls.private_key(), tls.device_ca());
    if (!context.ok()) return context.status();
    tls_context_ = *std::move(context);
    auto tls_fd = ListenTcp(tls.listen(), "dicom.tls.listen", &tls_port_);
    if (!tls_fd.ok()) return tls_fd.status();
    tls_listen_fd_ = *tls_fd;
  }
  pool_ = std::make_unique<Pool>(cfg, config_);
  listener_ = std::thread([this] { pool_->Run(listen_fd_); });
  if (tls_context_) {
    tls_listener_ = std::thread([this] { pool_->Run(tls_listen_fd_, tls_context_.get()); });
  }
  return absl::OkStatus();
}

void DicomReceiver::Stop() {
  if (!pool_) return;
  pool_->Stop();  // no new connections; running associations finish
  if (listener_.joinable()) listener_.join();
  if (tls_listener_.joinable()) tls_listener_.join();
  pool_.reset();
  for (int* fd : {&listen_fd_, &tls_listen_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

}  // namespace rdg::agent
