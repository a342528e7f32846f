"""Revocation (issue 17): the platform CA revokes a reader's certificate with `openssl ca`
(deploy/dev-crl.sh) and the running gateway, reading tls.crl_file, refuses it at the TLS
handshake within 5 s of the CRL file changing, and on the next call of a connection made before;
a report signing key revoked later leaves the reports signed before it valid and refuses the
ones signed after."""
import importlib
import os
import shutil
import subprocess
import tempfile
import time

import grpc
import pydicom
from pydicom.uid import generate_uid

import harness

harness.python_stubs()
reading_pb2 = importlib.import_module("rdg.v1.reading_pb2")
reading_pb2_grpc = importlib.import_module("rdg.v1.reading_pb2_grpc")

DEV_CRL = os.path.join(harness.SOURCE_DIR, "deploy/dev-crl.sh")


class RevocationTest(harness.GatewayTestCase):

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="rdg-test-")
        # A PKI of this module alone: its CA's database of revocations is not shared.
        self.pki = harness.make_pki("revocation")
        self.crl()
        self.gateway = harness.Gateway(self.workdir, self.pki,
                                       f'tls {{ crl_file: "{self.pki}/crl.pem" }}\n')
        self.gateway.start()

    def crl(self, *names):
        """Revokes `names` and writes the CA's new CRL into the PKI (renamed into place)."""
        subprocess.run(["bash", DEV_CRL, self.pki, *names], check=True, stdout=subprocess.DEVNULL)
        return time.monotonic()

    def distinct_ecg(self):
        ds = pydicom.dcmread(os.path.join(harness.PYDICOM_FILES, "waveform_ecg.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        return harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))

    def test_a_revoked_reader_is_refused_at_the_handshake_within_5_s(self):
        rad2 = self.reader("reader-a-rad2")
        self.assertEqual(rad2.run("worklist").returncode, 0)
        # A connection made before the revocation, kept open.
        channel = grpc.secure_channel(self.gateway.address,
                                      self.credentials("reader-a-rad2", pki=self.pki))
        self.addCleanup(channel.close)
        stub = reading_pb2_grpc.ReadingServiceStub(channel)
        stub.GetWorklist(reading_pb2.WorklistRequest(), timeout=30)

        changed = self.crl("reader-a-rad2")

        def refused_at_the_handshake():
            # A call may first meet the per-call check (the handshake looked at the file less
            # than a second before it changed); within 5 s the handshake itself refuses.
            p = rad2.run("worklist")
            said = p.stdout + p.stderr
            return p if p.returncode != 0 and "at the TLS handshake" in said else None
        refused = harness.wait_for(refused_at_the_handshake, timeout=5, interval=0.1,
                                   what="the revoked reader refused at the handshake")
        elapsed = time.monotonic() - changed
        print(f"\n  revoked reader refused {elapsed:.2f} s after the CRL changed: "
              f"{(refused.stdout + refused.stderr).strip()[:160]}")
        self.assertIn("TLS handshake refused: a revoked client certificate "
                      "(CN=reader-a-rad2,OU=reader,O=county-a)", self.gateway.log())
        with self.assertRaises(grpc.RpcError) as caught:
            stub.GetWorklist(reading_pb2.WorklistRequest(), timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("your certificate was revoked by the platform CA at",
                      caught.exception.details())
        # Both refusals are in the audit log, naming the certificate; the call's with its address.
        audited = lambda action: self.gateway.query(
            "SELECT outcome, peer, subject, detail FROM audit_log WHERE action = ? AND "
            "subject LIKE 'CN=reader-a-rad2,%'", action)
        harness.wait_for(lambda: audited("tls_handshake") and audited("get_worklist"), timeout=10,
                         what="the refusals audited")
        outcome, peer, _, detail = audited("tls_handshake")[0]
        self.assertEqual((outcome, peer), ("UNAUTHENTICATED", ""))
        self.assertIn("certificate revoked at", detail)
        outcome, peer, _, _ = audited("get_worklist")[-1]
        self.assertEqual(outcome, "UNAUTHENTICATED")
        self.assertRegex(peer, r"^ipv[46]:")
        # Others carry on, without a restart.
        self.assertEqual(self.reader("reader-a-rad").run("worklist").returncode, 0)
        self.assert_gateway_alive()

    def test_reports_signed_before_a_revocation_stay_valid_and_later_ones_are_refused(self):
        clinic = self.clinic()
        ecg_reader = self.reader("reader-a-ecg-tls")  # TLS identity; signs with its SM2 key
        sign = ("--sign-key", os.path.join(self.pki, "reader-a-ecg.key"),
                "--sign-cert", os.path.join(self.pki, "reader-a-ecg.pem"))
        first, second = (clinic.json("upload", self.distinct_ecg())["exams"][0]["exam_id"]
                         for _ in range(2))
        for exam in (first, second):
            self.assertEqual(ecg_reader.run("claim", exam).returncode, 0)
        done = ecg_reader.run("report", first, "--final", "--impression", "窦性心律", *sign)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

        # The SM2 signing certificate (not the TLS one), and a clinic's certificate whose refusal
        # shows when the gateway has read the new CRL.
        self.crl("reader-a-ecg", "clinic-a2")
        harness.wait_for(lambda: self.clinic("clinic-a2").run("exams").returncode != 0,
                         timeout=5, interval=0.1, what="the new CRL read")
        late = ecg_reader.run("report", second, "--final", "--impression", "窦性心律", *sign)
        self.assertNotEqual(late.returncode, 0)
        print(f"\n  signed after the revocation: {(late.stdout + late.stderr).strip()[:200]}")
        self.assertIn("the signer's certificate was revoked at", late.stdout + late.stderr)
        # The report signed before still verifies for the clinic, signature and receipt.
        out = os.path.join(self.workdir, "report-" + first)
        self.assertTrue(clinic.json("report", first, "--out", out)["verified"])
        shutil.rmtree(out, ignore_errors=True)


class RevocationHelpTest(harness.unittest.TestCase):

    def test_rdg_admin_says_how_the_ca_revokes(self):
        said = subprocess.run([os.path.join(harness.BIN_DIR, "rdg-admin"), "--help"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("openssl ca -config ca.cnf -revoke", said)
        self.assertIn("-gencrl", said)


if __name__ == "__main__":
    harness.unittest.main()
