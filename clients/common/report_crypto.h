// Report signatures on the client side: a reader signs the canonical bytes locally with their own
// key (it never leaves the machine); a clinic verifies a delivered report as any third party
// would, with the platform CA only. Independent of the gateway's own verifier on purpose.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"

#include "rdg/v1/reading.pb.h"

namespace rdg::clients {

//! Signs `canonical` with the key in `key_path` (PEM): an SM2 key makes a plain SM2/SM3
//! signature with the GB/T ID 1234567812345678, any other key a DER CMS detached signature with
//! SHA-256 (signer certificate embedded). Returns false with `error` set on failure.
bool SignReport(const std::string& canonical, const std::string& key_path,
                const std::string& cert_path, rdg::v1::ReportSignature* out, std::string* error);

//! What a signed report is checked against besides its own signature.
struct ReportExpectations {
  std::string exam_id;  //!< the exam the report must be for; empty: not checked
  //! When the gateway accepted it (ReportVersion.accepted_at): signed_at must be within
  //! kSignedAtTolerance of it. Unset: not checked.
  std::optional<absl::Time> accepted_at;
  //! The desk the gateway's receipt names: the report's `desk:` line must be the same (absent
  //! counts as ""). Unset: not checked.
  std::optional<std::string> desk;
};

//! How far a report's signed_at may be from the gateway's receipt (clocks of reading rooms).
inline constexpr absl::Duration kSignedAtTolerance = absl::Minutes(10);

//! Verifies signed report bytes as any third party would, with the platform CA alone:
//! the signer certificate is the one inside the CMS SignerInfo (an SM2 signature carries none:
//! then `signer_pem`, whose key the signature proves), and for CMS `signer_pem` must be that
//! same certificate; it chains to the CA in `ca_path` at the report's signed_at; it is a
//! reader's (OU=reader) with digitalSignature and nonRepudiation key usage; the signature
//! covers exactly `canonical`; the canonical text names the expected exam and the certificate's
//! own reader (CN) and institution (O); it is a FINAL or AMENDED report; its desk is the expected
//! one; signed_at is within kSignedAtTolerance of acceptance.
//! False with `detail` naming the first check that failed; true with "signed by …".
bool VerifySignedReport(const std::string& canonical, rdg::v1::SignatureFormat format,
                        const std::string& signature, const std::string& signer_pem,
                        const std::string& ca_path, const ReportExpectations& expect,
                        std::string* detail);

//! Verifies the gateway's receipt for a report (proto/rdg/v1/report_canonical.h,
//! ReportReceiptBytes) with the platform CA alone: a DER CMS signature over exactly `receipt`
//! by a certificate with OU=gateway that chained to the CA at the receipt's issued_at. Its
//! fields in `fields`; false with `detail` naming what failed. What the receipt says (exam,
//! acceptance time, desk, the report's SHA-256) is for the caller to compare.
bool VerifyReceipt(const std::string& receipt, const std::string& signature,
                   const std::string& ca_path, std::map<std::string, std::string>* fields,
                   std::string* detail);

//! A DER CMS signature over exactly `content` by the gateway (a certificate with OU=gateway that
//! chained to the platform CA in `ca_path` at `at`): its audit checkpoints. False with `detail`
//! naming what failed; `what` names the content in it.
bool VerifyGatewaySignature(const std::string& content, const std::string& signature,
                            const std::string& ca_path, absl::Time at, const std::string& what,
                            std::string* detail);

//! The fields of canonical report bytes (proto/rdg/v1/report_canonical.h), unescaped; empty
//! when `canonical` is not RDG-REPORT-V1 text.
std::map<std::string, std::string> CanonicalReportFields(const std::string& canonical);
//! The same for a gateway receipt (RDG-RECEIPT-V1 text).
std::map<std::string, std::string> ReceiptFields(const std::string& receipt);

//! The SHA-256 fingerprint of a PEM certificate's DER encoding, as `openssl x509 -fingerprint
//! -sha256` prints it ("AB:CD:…", 95 characters); empty when `pem` holds no certificate.
std::string CertificateFingerprint(const std::string& pem);

//! The O (institution) and CN (user) of a PEM certificate file.
bool CertificateIdentity(const std::string& cert_path, std::string* institution, std::string* user,
                         std::string* error);

}  // namespace rdg::clients
