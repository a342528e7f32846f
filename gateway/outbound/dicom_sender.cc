#include "gateway/outbound/dicom_sender.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "dcmtk/config/osconfig.h"  // first of DCMTK's headers
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmnet/scu.h"
#include "dcmtk/dcmtls/tlsscu.h"

namespace rdg::outbound {
namespace {

//! "host:port", "[v6]:port".
bool SplitAddress(absl::string_view address, std::string* host, uint16_t* port) {
  const size_t colon = address.rfind(':');
  int p = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &p) ||
      p <= 0 || p > 65535) {
    return false;
  }
  absl::string_view h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *host = std::string(h);
  *port = static_cast<uint16_t>(p);
  return true;
}

//! A C-STORE response status (PS3.4 B.2.3, PS3.7 C): stored, retry, or refused for good.
enum class Verdict { kStored, kRetry, kRefused };
Verdict Judge(uint16_t status) {
  if (status == 0x0000 || (status & 0xF000) == 0xB000) return Verdict::kStored;  // warnings too
  if (status == 0x0111) return Verdict::kStored;  // duplicate SOP instance: the PACS has it
  if ((status & 0xFF00) == 0xA700) return Verdict::kRetry;           // out of resources
  if (status == 0x0213 || status == 0x0210) return Verdict::kRetry;  // resource limitation, dup
  return Verdict::kRefused;  // 0xA9xx, 0xCxxx, 0x0122 SOP class not supported, …
}

//! The data set of an object held in memory (Part 10 bytes).
absl::Status LoadBytes(const std::string& bytes, DcmFileFormat& file) {
  DcmInputBufferStream in;
  in.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  in.setEos();
  file.transferInit();
  OFCondition c = file.read(in, EXS_Unknown);
  file.transferEnd();
  if (c.bad()) return absl::InternalError(absl::StrCat("cannot read a document made: ", c.text()));
  return absl::OkStatus();
}

}  // namespace

SendOutcome SendDicom(const rdg::v1::DicomDestination& destination,
                      const std::vector<DicomObject>& objects, absl::Duration timeout,
                      const rdg::v1::TlsConfig& identity) {
  if (objects.empty()) return SendOutcome::Sent("nothing to send");
  std::string host;
  uint16_t port = 0;
  if (!SplitAddress(destination.address(), &host, &port)) {
    return SendOutcome::Refused(absl::StrCat("bad address ", destination.address()));
  }
  const Uint32 seconds = static_cast<Uint32>(std::max<int64_t>(1, absl::ToInt64Seconds(timeout)));
  // DICOM over TLS: DCMTK's TLS SCU, the gateway's certificate presented, the PACS's verified.
  std::unique_ptr<DcmSCU> scu_owner;
  DcmTLSSCU* tls = nullptr;
  if (destination.tls()) {
    auto t = std::make_unique<DcmTLSSCU>();
    t->addTrustedCertFile(destination.ca_file().c_str());
    t->enableAuthentication(identity.key_file().c_str(), identity.cert_file().c_str(), "");
    t->setPeerCertVerification(DCV_requireCertificate);
    tls = t.get();
    scu_owner = std::move(t);
  } else {
    scu_owner = std::make_unique<DcmSCU>();
  }
  DcmSCU& scu = *scu_owner;
  scu.setAETitle(destination.calling_ae().c_str());
  scu.setPeerHostName(host.c_str());
  scu.setPeerPort(port);
  scu.setPeerAETitle(destination.called_ae().c_str());
  scu.setConnectionTimeout(static_cast<Sint32>(seconds));
  scu.setACSETimeout(seconds);
  scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  scu.setDIMSETimeout(seconds);
  scu.setVerbosePCMode(OFFalse);
  // One presentation context per SOP class and transfer syntax the objects are stored in.
  std::map<std::pair<std::string, std::string>, bool> contexts;
  for (const DicomObject& o : objects) contexts[{o.sop_class_uid, o.transfer_syntax_uid}] = true;
  if (contexts.size() > 128)
    return SendOutcome::Refused("more than 128 SOP class / transfer syntax pairs");
  for (const auto& [pair, unused] : contexts) {
    OFList<OFString> syntaxes;
    syntaxes.push_back(pair.second.c_str());
    scu.addPresentationContext(pair.first.c_str(), syntaxes);
  }
  if (OFCondition c = scu.initNetwork(); c.bad()) {
    return SendOutcome::Retry(absl::StrCat("network: ", c.text()));
  }
  if (tls != nullptr) {
    if (OFCondition c = tls->setTLSProfile(TSP_Profile_BCP195); c.bad()) {
      return SendOutcome::Retry(absl::StrCat("DICOM TLS set-up: ", c.text()));
    }
  }
  if (OFCondition c = scu.negotiateAssociation(); c.bad()) {
    // No connection, or the PACS rejected the association (its AE title, its load): retried;
    // the administrator sees why in rdg-admin outbound.
    return SendOutcome::Retry(absl::StrCat("association with ", destination.called_ae(), "@",
                                           destination.address(), ": ", c.text()),
                              /*unreachable=*/true);
  }
  int stored = 0, warned = 0;
  SendOutcome outcome = SendOutcome::Sent("");
  for (const DicomObject& o : objects) {
    T_ASC_PresentationContextID pc =
        scu.findPresentationContextID(o.sop_class_uid.c_str(), o.transfer_syntax_uid.c_str());
    if (pc == 0) {
      outcome =
          SendOutcome::Refused(absl::StrCat("the PACS accepts no ", o.sop_class_uid, " in ",
                                            o.transfer_syntax_uid, " (", o.sop_instance_uid, ")"));
      break;
    }
    Uint16 status = 0;
    OFCondition c;
    if (!o.path.empty()) {
      c = scu.sendSTORERequest(pc, OFFilename(o.path.c_str()), nullptr, status);
    } else {
      DcmFileFormat file;
      if (absl::Status s = LoadBytes(o.bytes, file); !s.ok()) {
        outcome = SendOutcome::Retry(std::string(s.message()));
        break;
      }
      c = scu.sendSTORERequest(pc, OFFilename(), file.getDataset(), status);
    }
    if (c.bad()) {
      outcome = SendOutcome::Retry(absl::StrCat("C-STORE of ", o.sop_instance_uid, ": ", c.text()));
      break;
    }
    const Verdict v = Judge(status);
    if (v != Verdict::kStored) {
      const std::string why = absl::StrFormat("C-STORE of %s: status 0x%04X", o.sop_instance_uid,
                                              static_cast<unsigned>(status));
      outcome = v == Verdict::kRetry ? SendOutcome::Retry(why) : SendOutcome::Refused(why);
      break;
    }
    ++stored;
    if (status != 0) ++warned;
  }
  if (outcome.kind == SendOutcome::Kind::kSent) {
    scu.releaseAssociation();
    outcome.detail = absl::StrCat("stored ", stored, " instance", stored == 1 ? "" : "s", " at ",
                                  destination.called_ae(),
                                  warned ? absl::StrCat(" (", warned, " with warnings)") : "");
  } else {
    scu.abortAssociation();
  }
  return outcome;
}

}  // namespace rdg::outbound
