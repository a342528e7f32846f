"""Proof, not just a valid chain: `rdg-clinic verify DIR` (offline) and the openssl commands it
prints refuse every forged report folder — re-signed with the gateway's or a clinic's key, another
exam's genuine report, a swapped signer.pem, a certificate without nonRepudiation, a signed_at far
from the gateway's receipt or before the certificate existed — each with its reason, and accept
the genuine folder."""
import os
import re
import shutil
import subprocess

import pydicom
from pydicom.uid import generate_uid

import harness

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")

NO_NON_REPUDIATION_CNF = """
[ req ]
distinguished_name = dn
[ dn ]
[ ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth, emailProtection
"""

# No keyUsage extension at all (OpenSSL then reports every usage as allowed).
NO_KEY_USAGE_CNF = """
[ req ]
distinguished_name = dn
[ dn ]
[ ext ]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = clientAuth, emailProtection
"""


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


class ReportProofTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.a1, self.b1 = self.clinic("clinic-a1"), self.clinic("clinic-b1")
        self.ca = os.path.join(self.pki, "ca.pem")

    def reported_exam(self, clinic, reader_name):
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = harness.write_dicom(ds, os.path.join(self.workdir, ds.SOPInstanceUID + ".dcm"))
        exam = clinic.json("upload", path)["files"][0]["exam_id"]
        reader = self.reader(reader_name)
        reader.run("claim", exam, check=True)
        reader.run("report", exam, "--final", "--impression", "No abnormality.", check=True)
        return exam

    def saved(self, clinic, exam, name):
        out = os.path.join(self.workdir, name)
        result = clinic.json("report", exam, "--out", out)
        self.assertTrue(result["verified"], result)
        return out

    def copy(self, folder, name):
        out = os.path.join(self.workdir, name)
        shutil.copytree(folder, out)
        return out

    def resign(self, folder, key, cert):
        """report.p7s made again over report.txt with another key; signer.pem to match."""
        proc = run(["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
                    "-in", f"{folder}/report.txt", "-signer", cert, "-inkey", key,
                    "-out", f"{folder}/report.p7s"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        shutil.copy(cert, f"{folder}/signer.pem")

    def verify(self, folder, *args):
        return self.a1.run("verify", folder, "--verify-ca", self.ca, *args)

    def openssl_checks(self, proc):
        """Runs the openssl/grep commands `verify` printed; returns (all succeeded, output)."""
        commands = [l.strip() for l in proc.stdout.splitlines()
                    if l.startswith("  openssl ") or l.startswith("  grep ")]
        self.assertGreaterEqual(len(commands), 3, proc.stdout)
        ok, out = True, ""
        for c in commands:
            r = run(c, shell=True)
            ok = ok and r.returncode == 0
            out += r.stdout + r.stderr
        return ok, out

    def test_each_forgery_is_refused_with_its_reason_and_the_genuine_folder_verifies(self):
        exam = self.reported_exam(self.a1, "reader-a-rad")
        genuine = self.saved(self.a1, exam, "genuine")
        other_exam = self.reported_exam(self.b1, "reader-b-rad")
        b1_folder = self.saved(self.b1, other_exam, "b1-genuine")

        proc = self.verify(genuine)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("VERIFIES: signed by /O=county-a/OU=reader/CN=reader-a-rad", proc.stdout)
        self.assertIn(f"-CAfile {self.ca}", proc.stdout, "the printed commands name the real CA")
        ok, out = self.openssl_checks(proc)
        self.assertTrue(ok, out)
        self.assertIn("Non Repudiation", out)
        self.assertIn(f"exam_id: {exam}", out)

        pki = self.pki
        gateway_key = self.copy(genuine, "gateway-key")
        self.resign(gateway_key, f"{pki}/gateway.key", f"{pki}/gateway.pem")
        clinic_key = self.copy(genuine, "clinic-key")
        self.resign(clinic_key, f"{pki}/clinic-a1.key", f"{pki}/clinic-a1.pem")
        swapped = self.copy(genuine, "swapped-signer")
        shutil.copy(f"{pki}/reader-a-lab.pem", f"{swapped}/signer.pem")

        # signed_at changed (and signed again with the reader's real key).
        def dated(name, when, key=f"{pki}/reader-a-rad.key", cert=f"{pki}/reader-a-rad.pem"):
            folder = self.copy(genuine, name)
            with open(f"{folder}/report.txt") as f:
                text = f.read()
            with open(f"{folder}/report.txt", "w") as f:
                f.write(re.sub(r"signed_at: .*", f"signed_at: {when}", text))
            self.resign(folder, key, cert)
            return folder

        def minutes_from_now(minutes):
            return run(["date", "-u", "-d", f"{minutes} minutes", "+%Y-%m-%dT%H:%M:%SZ"]).stdout.strip()

        # A reader certificate of the platform CA without nonRepudiation (a transport key),
        # signing a report dated just after it was made.
        weak_dir = os.path.join(self.workdir, "weak-cert")
        os.makedirs(weak_dir)
        def reader_cert(name, config_text):
            config = os.path.join(self.workdir, f"{name}.cnf")
            with open(config, "w") as f:
                f.write(config_text)
            made = run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{weak_dir}/{name}.key",
                        "-out", f"{weak_dir}/{name}.pem", "-subj",
                        "/O=county-a/OU=reader/CN=reader-a-rad", "-CA", f"{pki}/ca.pem", "-CAkey",
                        harness.ca_key(pki), "-config", config, "-extensions", "ext", "-days", "2"])
            self.assertEqual(made.returncode, 0, made.stderr)
            return f"{weak_dir}/{name}.key", f"{weak_dir}/{name}.pem"
        weak = dated("no-non-repudiation", minutes_from_now(1),
                     *reader_cert("weak", NO_NON_REPUDIATION_CNF))
        no_usage = dated("no-key-usage", minutes_from_now(1),
                         *reader_cert("no-usage", NO_KEY_USAGE_CNF))
        # Before the reader's certificate existed, and two days after the gateway's receipt.
        in_2001 = dated("signed-2001", "2001-01-01T00:00:00Z")
        later = dated("signed-later", minutes_from_now(2 * 24 * 60))

        cases = [
            (gateway_key, (), "signed by a gateway certificate", True),
            (clinic_key, (), "signed by a clinic certificate", True),
            (b1_folder, ("--exam", exam), f"the report is for exam {other_exam}, not {exam}", False),
            (swapped, (), "signer.pem is not the certificate that made the signature", False),
            (weak, (), "lacks the digitalSignature and nonRepudiation key usage", False),
            (no_usage, (), "lacks the digitalSignature and nonRepudiation key usage", False),
            (in_2001, (), "does not chain to the platform CA at signed_at 2001-01-01T00:00:00Z", True),
            (later, (), "from its receipt by the gateway", False),
        ]
        for folder, args, reason, openssl_refuses in cases:
            with self.subTest(os.path.basename(folder)):
                proc = self.verify(folder, *args)
                self.assertNotEqual(proc.returncode, 0, proc.stdout)
                self.assertIn("DOES NOT VERIFY", proc.stdout)
                self.assertIn(reason, proc.stdout)
                ok, out = self.openssl_checks(proc)
                if openssl_refuses:  # the S/MIME signing purpose or the signing time fails
                    self.assertFalse(ok, out)
                elif folder == b1_folder:
                    self.assertIn(f"exam_id: {other_exam}", out)  # not the exam asked about
                elif folder == swapped:
                    self.assertIn("CN = reader-a-rad", out)  # the signature's own signer
                    self.assertNotIn("reader-a-lab", out)
                elif folder in (weak, no_usage):
                    self.assertNotIn("Non Repudiation", out)
        # Far from receipt: what openssl shows (signed_at, and the receipt named) tells it.
        proc = self.verify(later)
        ok, out = self.openssl_checks(proc)
        self.assertIn("signed_at: " + minutes_from_now(2 * 24 * 60)[:10], out)
        self.assertRegex(proc.stdout, r"within 10 minutes of the gateway's receipt, accepted_at \d{4}-")
        # The gateway's signed receipt, not a side file, says which exam and when; delivery.json
        # is for people only.
        os.remove(f"{genuine}/delivery.json")
        self.assertEqual(self.verify(genuine).returncode, 0)
        bare = self.copy(genuine, "no-receipt")
        os.remove(f"{bare}/receipt.txt")
        self.assertIn("holds no gateway receipt", self.verify(bare, "--exam", exam).stdout)
        # Another clinic's genuine report handed to clinic-a1: refused for clinic-a1 (the O of its
        # certificate) even without --exam; an auditor's check (--origin any) shows whose it is.
        proc = self.verify(b1_folder)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn(f"(exam {other_exam}): DOES NOT VERIFY: the report is for an exam of "
                      "clinic-b1, not of clinic-a1", proc.stdout)
        proc = self.verify(b1_folder, "--origin", "any")
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn(f"exam {other_exam} of clinic-b1", proc.stdout)

        # A reader of another desk (reader-a-lab) writes their own report for the CT, naming the
        # imaging desk, signed with their genuine reader key, beside the genuine receipt: not the
        # bytes the gateway accepted. Then with a receipt of their own making.
        lab = self.copy(genuine, "lab-forgery")
        with open(f"{lab}/report.txt") as f:
            text = f.read()
        with open(f"{lab}/report.txt", "w") as f:
            f.write(text.replace("reader_user: reader-a-rad", "reader_user: reader-a-lab")
                    .replace("impression: No abnormality.", "impression: Disregard."))
        self.resign(lab, f"{pki}/reader-a-lab.key", f"{pki}/reader-a-lab.pem")
        proc = self.verify(lab, "--exam", exam)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("not the report the gateway accepted", proc.stdout)
        self.assertIn("desk: county-a/imaging-desk", text, "the genuine report names its desk")
        for signer, reason in (("reader-a-lab", "signed by a reader certificate"),
                               ("clinic-a1", "signed by a clinic certificate")):
            own = self.copy(lab, f"own-receipt-{signer}")
            digest = run(["openssl", "dgst", "-sha256", "-r", f"{own}/report.txt"]).stdout.split()[0]
            with open(f"{own}/receipt.txt") as f:
                receipt = f.read()
            with open(f"{own}/receipt.txt", "w") as f:
                f.write(re.sub(r"report_sha256: .*", f"report_sha256: {digest}", receipt))
            unsigned = self.verify(own, "--exam", exam)
            self.assertIn("the gateway's receipt: the signature does not match receipt.txt",
                          unsigned.stdout)
            made = run(["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
                        "-in", f"{own}/receipt.txt", "-signer", f"{pki}/{signer}.pem", "-inkey",
                        f"{pki}/{signer}.key", "-out", f"{own}/receipt.p7s"])
            self.assertEqual(made.returncode, 0, made.stderr)
            proc = self.verify(own, "--exam", exam)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn(f"the receipt is {reason}", proc.stdout)
        # The same checks where the report arrives: `report` refuses another exam's report too.
        self.assertEqual(self.a1.run("report", other_exam, "--out",
                                     os.path.join(self.workdir, "x")).returncode, 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
