#include "clients/agent/dicom_receiver.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scppool.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glog/logging.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/agent/agent_config.h"
#include "storage/posix_file.h"

namespace rdg::agent {
namespace {

//! What every association worker needs. DCMTK's pool constructs workers itself (default
//! constructor), so they find it here; one receiver per process.
struct ReceiverContext {
  Outbox* outbox = nullptr;
  std::atomic<int64_t>* received = nullptr;
  std::vector<std::string> allowed_calling;
  std::string ae_title;
};
std::atomic<ReceiverContext*> g_context{nullptr};

class StoreWorker : public DcmThreadSCP {
 protected:
  OFCondition handleIncomingCommand(T_DIMSE_Message* msg,
                                    const DcmPresentationContextInfo& info) override {
    if (msg->CommandField != DIMSE_C_STORE_RQ) {
      return DcmThreadSCP::handleIncomingCommand(msg, info);  // C-ECHO and refusals
    }
    ReceiverContext* ctx = g_context.load();
    T_DIMSE_C_StoreRQ& rq = msg->msg.CStoreRQ;
    const std::string temp = ctx->outbox->NewTempPath();
    // Streams the dataset to the file exactly as received, behind a Part 10 meta header.
    OFCondition cond = receiveSTORERequest(rq, info.presentationContextID, OFString(temp.c_str()));
    if (cond.bad()) {
      (void)storage::RemoveFile(temp);
      LOG(WARNING) << "dicom: receiving a C-STORE from " << getPeerAETitle().c_str()
                   << " failed: " << cond.text();
      return cond;
    }
    Uint16 status = STATUS_Success;
    auto id = ctx->outbox->Add(temp, rdg::v1::DICOM, rq.AffectedSOPInstanceUID,
                               absl::StrCat("dicom ", getPeerAETitle().c_str()), absl::Now());
    if (!id.ok()) {
      status = STATUS_STORE_Refused_OutOfResources;
      LOG(ERROR) << "dicom: could not make a received object durable: " << id.status();
    } else {
      ++*ctx->received;
      VLOG(1) << "dicom: outbox item " << *id << " from " << getPeerAETitle().c_str();
    }
    return sendSTOREResponse(info.presentationContextID, rq, status);
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

//! A free TCP port on this machine, for a configured port 0.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

class DicomReceiver::Pool : public DcmSCPPool<StoreWorker> {};

DicomReceiver::DicomReceiver(const rdg::v1::DicomListener& config, Outbox& outbox)
    : config_(config), outbox_(outbox) {}

DicomReceiver::~DicomReceiver() { Stop(); }

absl::Status DicomReceiver::Start() {
  auto* ctx = new ReceiverContext{&outbox_, &received_,
                                  {config_.allowed_calling_ae_titles().begin(),
                                   config_.allowed_calling_ae_titles().end()},
                                  config_.ae_title()};
  delete g_context.exchange(ctx);
  const std::string& listen = config_.listen();
  if (!absl::SimpleAtoi(listen.substr(listen.rfind(':') + 1), &port_)) {
    return absl::InvalidArgumentError("dicom.listen: bad port");
  }
  if (port_ == 0) port_ = FreePort();
  // Debian's DCMTK leaves Nagle's algorithm on unless TCP_NODELAY is set in the environment;
  // with it on, every C-STORE response waits for a delayed ACK (~40 ms: 20 objects/s).
  setenv("TCP_NODELAY", "1", /*overwrite=*/1);
  if (port_ == 0) return absl::UnavailableError("dicom: no free TCP port");
  pool_ = std::make_unique<Pool>();
  DcmSCPConfig& cfg = pool_->getConfig();
  cfg.setAETitle(config_.ae_title().c_str());
  cfg.setRespondWithCalledAETitle(OFFalse);  // a wrong called AE title is refused
  cfg.setPort(static_cast<Uint16>(port_));
  cfg.setHostLookupEnabled(OFFalse);
  cfg.setConnectionBlockingMode(DUL_NOBLOCK);  // wake up every second to notice Stop()
  cfg.setConnectionTimeout(1);
  cfg.setDIMSETimeout(static_cast<Uint32>(config_.timeout_seconds()));
  cfg.setACSETimeout(static_cast<Uint32>(config_.timeout_seconds()));
  // Uncompressed syntaxes for everything; compressed ones are accepted as they are (the agent
  // never transcodes: the gateway stores the bytes the device produced).
  OFList<OFString> syntaxes;
  for (const char* ts : {UID_LittleEndianExplicitTransferSyntax,
                         UID_BigEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
                         UID_DeflatedExplicitVRLittleEndianTransferSyntax,
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
  pool_->setMaxThreads(static_cast<Uint16>(config_.max_associations()));
  listener_ = std::thread([this] {
    OFCondition c = pool_->listen();
    if (c.bad() && c != DUL_NOASSOCIATIONREQUEST) {
      LOG(ERROR) << "dicom: listener stopped: " << c.text();
    }
  });
  return absl::OkStatus();
}

void DicomReceiver::Stop() {
  if (!pool_) return;
  pool_->stopAfterCurrentAssociations();
  if (listener_.joinable()) listener_.join();
  pool_.reset();
}

}  // namespace rdg::agent
