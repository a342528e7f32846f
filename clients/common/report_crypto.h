// Report signatures on the client side: a reader signs the canonical bytes locally with their own
// key (it never leaves the machine); a clinic verifies a delivered report as any third party
// would, with the platform CA only. Independent of the gateway's own verifier on purpose.
#pragma once

#include <string>

#include "rdg/v1/reading.pb.h"

namespace rdg::clients {

//! Signs `canonical` with the key in `key_path` (PEM): an SM2 key makes a plain SM2/SM3
//! signature with the GB/T ID 1234567812345678, any other key a DER CMS detached signature with
//! SHA-256 (signer certificate embedded). Returns false with `error` set on failure.
bool SignReport(const std::string& canonical, const std::string& key_path,
                const std::string& cert_path, rdg::v1::ReportSignature* out, std::string* error);

//! Verifies a delivered report: the signer certificate chains to the CA in `ca_path` and the
//! signature covers exactly the canonical bytes. `detail` says why not (or who signed).
bool VerifyReport(const rdg::v1::ReportVersion& report, const std::string& ca_path,
                  std::string* detail);

//! The SHA-256 fingerprint of a PEM certificate's DER encoding, as `openssl x509 -fingerprint
//! -sha256` prints it ("AB:CD:…", 95 characters); empty when `pem` holds no certificate.
std::string CertificateFingerprint(const std::string& pem);

//! The O (institution) and CN (user) of a PEM certificate file.
bool CertificateIdentity(const std::string& cert_path, std::string* institution,
                         std::string* user, std::string* error);

}  // namespace rdg::clients
