"""Signed reports end to end with the real binaries: verified by the openssl command line alone,
FINAL refused for every kind of wrong signature or signer, addenda keep every version, clinics
isolated, and a watching clinic misses nothing across a gateway restart."""
import importlib
import json
import os
import subprocess
import threading
import unittest

import grpc
import pydicom
from pydicom.uid import generate_uid

import harness

harness.python_stubs()
common_pb2 = importlib.import_module("rdg.v1.common_pb2")
reading_pb2 = importlib.import_module("rdg.v1.reading_pb2")
reading_pb2_grpc = importlib.import_module("rdg.v1.reading_pb2_grpc")

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
ECG = os.path.join(harness.PYDICOM_FILES, "waveform_ecg.dcm")


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


class ReportsTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.a1 = self.clinic("clinic-a1")
        self.rad = self.reader("reader-a-rad")
        self.lab = self.reader("reader-a-lab")
        self.ca = os.path.join(self.pki, "ca.pem")

    def fresh_ct(self):
        """A CT of its own exam (new UIDs) uploaded by clinic-a1; returns the exam id."""
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = os.path.join(self.workdir, ds.SOPInstanceUID + ".dcm")
        ds.save_as(path)
        return self.a1.json("upload", "--priority", "STAT", path)["exams"][0]["exam_id"]

    def final(self, reader, exam, *extra, impression="Normal chest CT.", expect=0):
        proc = reader.run("report", exam, "--final", "--findings", "Lungs clear.",
                          "--impression", impression, *extra)
        self.assertEqual(proc.returncode, expect, proc.stdout + proc.stderr)
        return proc

    def save_report(self, exam):
        out = os.path.join(self.workdir, "report-" + exam)
        result = self.a1.json("report", exam, "--out", out)
        self.assertTrue(result["verified"], result)
        return out

    def test_ecdsa_report_verified_by_openssl_alone(self):
        exam = self.fresh_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        self.assertEqual(self.rad.run("report", exam, "--impression", "Prelim.").returncode, 0)
        self.final(self.rad, exam)
        out = self.save_report(exam)
        verify = ["cms", "-verify", "-binary", "-inform", "DER", "-in", f"{out}/report.p7s",
                  "-content", f"{out}/report.txt", "-CAfile", self.ca, "-purpose", "any",
                  "-out", os.devnull]
        self.assertEqual(openssl(*verify).returncode, 0)
        with open(f"{out}/report.txt", "r+b") as f:  # one changed byte
            data = bytearray(f.read())
            data[-3] ^= 1
            f.seek(0)
            f.write(data)
        self.assertNotEqual(openssl(*verify).returncode, 0)
        self.assertEqual(self.a1.run("ack", exam).returncode, 0)
        events = [e["state"] for e in self.exam_events(exam)]
        for state in ("PRELIMINARY", "FINAL", "DELIVERED", "ACKNOWLEDGED"):
            self.assertIn(state, events)

    def test_sm2_critical_report_verified_by_openssl_alone(self):
        ecg_reader = self.reader("reader-a-ecg-tls")
        exam = self.a1.json("upload", "--priority", "STAT", ECG)["exams"][0]["exam_id"]
        self.assertEqual(ecg_reader.run("claim", exam).returncode, 0)
        self.final(ecg_reader, exam, "--critical",
                   "--sign-key", os.path.join(self.pki, "reader-a-ecg.key"),
                   "--sign-cert", os.path.join(self.pki, "reader-a-ecg.pem"),
                   impression="Acute anterior STEMI.")
        delivered = [json.loads(line) for line in self.a1.run("--json", "reports").stdout.splitlines()]
        mine = [d for d in delivered if d["report"]["content"]["exam_id"] == exam]
        self.assertEqual(len(mine), 1)
        self.assertTrue(mine[0]["urgent"])
        self.assertIn("acknowledge_by", mine[0])
        self.assertEqual(mine[0]["report"]["signature"]["format"], "SM2_SM3_RAW")
        out = self.save_report(exam)
        self.assertEqual(openssl("verify", "-CAfile", self.ca, f"{out}/signer.pem").returncode, 0)
        pub = openssl("x509", "-in", f"{out}/signer.pem", "-pubkey", "-noout").stdout
        with open(f"{out}/signer.pub", "w") as f:
            f.write(pub)
        verify = ["pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt",
                  "distid:1234567812345678", "-pubin", "-inkey", f"{out}/signer.pub",
                  "-in", f"{out}/report.txt", "-sigfile", f"{out}/report.sm2.sig"]
        self.assertEqual(openssl(*verify).returncode, 0)
        with open(f"{out}/report.txt", "a") as f:
            f.write(" ")
        self.assertNotEqual(openssl(*verify).returncode, 0)

    def test_final_refused_for_wrong_signatures_and_signers(self):
        exam = self.fresh_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        rogue = harness.make_pki("rogue")
        # A certificate from another CA.
        proc = self.final(self.rad, exam, "--sign-key", f"{rogue}/reader-a-rad.key",
                          "--sign-cert", f"{rogue}/reader-a-rad.pem", expect=1)
        self.assertIn("platform CA", proc.stderr)
        # Signed by someone who is not the caller (and not the claim holder).
        proc = self.final(self.rad, exam, "--sign-key", f"{self.pki}/reader-a-lab.key",
                          "--sign-cert", f"{self.pki}/reader-a-lab.pem", expect=1)
        self.assertIn("not by you", proc.stderr)
        # A reader of the same desk who does not hold the claim, signing with their own key.
        proc = self.final(self.reader("reader-a-rad2"), exam, expect=1)
        self.assertIn("claim", proc.stderr)
        # A clinic certificate, as caller and as signer.
        self.final(self.reader("clinic-a1"), exam, expect=1)
        proc = self.final(self.rad, exam, "--sign-key", f"{self.pki}/clinic-a1.key",
                          "--sign-cert", f"{self.pki}/clinic-a1.pem", expect=1)
        self.assertIn("nonRepudiation", proc.stderr)  # a transport key, not a signing one
        # A bad signature: valid CMS by the right reader, but over other bytes.
        code, details = self.bad_signature_status(exam)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("signature", details)
        self.assertNotIn("canonical_bytes", details, "refused for the signature, not the text")
        versions = self.rad.json("reports", exam).get("versions", [])
        self.assertFalse([v for v in versions if v["content"]["status"] == "FINAL_REPORT"])
        self.assertEqual(self.rad.json("worklist", "--state", "CLAIMED")["items"][0]["exam"]["exam_id"], exam)

    def bad_signature_status(self, exam):
        content = reading_pb2.ReportContent(
            exam_id=exam, findings="x", impression="Normal.", status=reading_pb2.FINAL_REPORT,
            reader_user="reader-a-rad", reader_institution="county-a",
            desk="county-a/imaging-desk")
        content.signed_at.GetCurrentTime()
        canonical = self.canonical(content)
        other = os.path.join(self.workdir, "other.txt")
        with open(other, "wb") as f:
            f.write(canonical + b"tampered")
        sig = os.path.join(self.workdir, "other.p7s")
        self.assertEqual(openssl("cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
                                 "-in", other, "-signer", f"{self.pki}/reader-a-rad.pem",
                                 "-inkey", f"{self.pki}/reader-a-rad.key", "-out", sig).returncode, 0)
        with open(sig, "rb") as f, open(f"{self.pki}/reader-a-rad.pem", "rb") as c:
            signature = reading_pb2.ReportSignature(format=reading_pb2.CMS_DETACHED_ECDSA_SHA256,
                                                    signature=f.read(), signer_certificate_pem=c.read())
        stub = reading_pb2_grpc.ReadingServiceStub(self.channel("reader-a-rad"))
        try:
            stub.SubmitReport(reading_pb2.SubmitReportRequest(
                content=content, canonical_bytes=canonical, signature=signature), timeout=30)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, ""

    @staticmethod
    def canonical(c):
        """The canonical bytes as README documents them: a third party's implementation."""
        def esc(v):
            return v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        signed = c.signed_at.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = ["RDG-REPORT-V1", f"exam_id: {esc(c.exam_id)}",
                 f"status: {reading_pb2.ReportStatus.Name(c.status)}",
                 f"reader_user: {esc(c.reader_user)}",
                 f"reader_institution: {esc(c.reader_institution)}", f"signed_at: {signed}",
                 f"critical: {'true' if c.critical else 'false'}",
                 f"supersedes: {esc(c.supersedes_report_id)}", f"findings: {esc(c.findings)}",
                 f"impression: {esc(c.impression)}"]
        if c.amendment_reason:
            lines.append(f"amendment_reason: {esc(c.amendment_reason)}")
        if c.desk:
            lines.append(f"desk: {esc(c.desk)}")
        return ("\n".join(lines) + "\n").encode()

    def channel(self, name):
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(read(self.ca), read(f"{self.pki}/{name}.key"),
                                             read(f"{self.pki}/{name}.pem"))
        return grpc.secure_channel(self.gateway.address, creds)

    def exam_events(self, exam):
        names = {v.number: v.name for v in common_pb2.ExamState.DESCRIPTOR.values}
        return [{"state": names[s], "actor": a} for s, a in self.gateway.query(
            "SELECT state, actor FROM exam_events WHERE exam_id = ? ORDER BY seq", exam)]

    def test_addendum_keeps_every_version(self):
        exam = self.fresh_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        self.assertEqual(self.rad.run("addendum", exam, "--impression", "too early",
                                      "--reason", "x").returncode, 1)
        self.final(self.rad, exam)
        no_reason = self.rad.run("addendum", exam, "--impression", "Addendum without a reason.")
        self.assertNotEqual(no_reason.returncode, 0)
        self.assertIn("--reason", no_reason.stderr)
        self.assertEqual(self.rad.run("addendum", exam, "--impression",
                                      "Addendum: 4 mm nodule, follow up in 12 months.",
                                      "--reason", "nodule missed on first reading").returncode, 0)
        versions = self.rad.json("reports", exam)["versions"]
        statuses = [v["content"]["status"] for v in versions]
        self.assertEqual(statuses, ["FINAL_REPORT", "AMENDED_REPORT"])
        self.assertEqual(versions[1]["content"]["supersedes_report_id"], versions[0]["report_id"])
        out = self.save_report(exam)  # the latest version: the addendum, which verifies
        with open(f"{out}/report.txt") as f:
            signed = f.read()
        self.assertIn("status: AMENDED_REPORT", signed)
        self.assertIn("amendment_reason: nodule missed on first reading", signed)
        self.assertEqual(versions[1]["content"]["reader_user"], "reader-a-rad")
        delivered = [json.loads(l)["report"]["report_id"]
                     for l in self.a1.run("--json", "reports").stdout.splitlines()]
        self.assertEqual(delivered, [versions[0]["report_id"], versions[1]["report_id"]])
        # Waiting for acknowledgement: the exam once, by its latest version; none after the ack.
        pending = [json.loads(l) for l in
                   self.a1.run("--json", "reports", "--unacknowledged").stdout.splitlines()]
        self.assertEqual([p["report"]["report_id"] for p in pending], [versions[1]["report_id"]])
        self.assertEqual(self.a1.run("ack", exam).returncode, 0)
        self.assertEqual(self.a1.run("--json", "reports", "--unacknowledged").stdout, "")

    def test_only_the_author_or_a_claim_for_amendment_amends(self):
        exam = self.fresh_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        self.final(self.rad, exam, impression="No abnormality.")
        # reader-a-lab (the lab desk) neither sees the CT nor may amend it.
        forged = self.lab.run("addendum", exam, "--impression", "No abnormality. Disregard previous "
                              "report.", "--reason", "mine now")
        self.assertNotEqual(forged.returncode, 0)
        self.assertIn(f"no exam {exam} in the queues of reader-a-lab", forged.stderr)
        self.assertNotEqual(self.lab.run("claim", exam, "--amend").returncode, 0)
        # Another radiologist of the same desk: refused without a claim for amendment (naming
        # the author), a plain claim of a FINAL exam says how, the claim needs a reason.
        rad2 = self.reader("reader-a-rad2")
        args = ("--impression", "Large pneumothorax.", "--critical",
                "--reason", "missed on first reading")
        no_claim = rad2.run("addendum", exam, *args)
        self.assertNotEqual(no_claim.returncode, 0)
        self.assertIn("reports of exam", no_claim.stderr)  # not even the versions to amend
        plain = rad2.run("claim", exam)
        self.assertNotEqual(plain.returncode, 0)
        self.assertIn("claim it for amendment", plain.stderr)
        self.assertNotEqual(rad2.run("claim", exam, "--amend").returncode, 0)
        self.assertEqual(rad2.run("claim", exam, "--amend", "--reason",
                                  "second look at the apex").returncode, 0)
        row = [l for l in rad2.run("worklist", "--state", "FINAL").stdout.splitlines() if exam in l]
        self.assertEqual(len(row), 1)
        self.assertIn("FINAL (AMENDING)", row[0], "the workflow shows the claim for amendment")
        self.assertIn("reader-a-rad2", row[0])
        self.assertEqual(rad2.run("addendum", exam, *args).returncode, 0)
        statuses = [(v["content"]["status"], v["content"]["reader_user"])
                    for v in self.rad.json("reports", exam)["versions"]]
        self.assertEqual(statuses, [("FINAL_REPORT", "reader-a-rad"),
                                    ("AMENDED_REPORT", "reader-a-rad2")])
        # The critical addendum (of a FINAL that was not critical) starts the acknowledgement clock.
        running = self.gateway.query("SELECT COUNT(*) FROM exam_stages WHERE exam_id = ? "
                                     "AND stage = 4 AND ended_at IS NULL", exam)[0][0]
        self.assertEqual(running, 1)

    def test_a_report_names_the_desk_it_was_read_at(self):
        exam = self.fresh_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        stub = reading_pb2_grpc.ReadingServiceStub(self.channel("reader-a-rad"))
        reports = stub.GetReports(reading_pb2.GetReportsRequest(exam_id=exam), timeout=30)
        self.assertEqual(reports.desk, "county-a/imaging-desk")

        def submit(desk):
            content = reading_pb2.ReportContent(
                exam_id=exam, impression="Prelim.", status=reading_pb2.PRELIMINARY_REPORT,
                reader_user="reader-a-rad", reader_institution="county-a", desk=desk)
            content.signed_at.GetCurrentTime()
            try:
                stub.SubmitReport(reading_pb2.SubmitReportRequest(
                    content=content, canonical_bytes=self.canonical(content)), timeout=30)
            except grpc.RpcError as e:
                return e.code(), e.details()
            return grpc.StatusCode.OK, ""

        code, details = submit("")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('desk "county-a/imaging-desk"', details)
        for other in ("county-a/lab-desk", "city/consultation-desk", "no-such-desk"):
            code, details = submit(other)
            self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, other)
            self.assertIn(f'does not read exam {exam} at desk "{other}"', details)
        self.assertEqual(submit("county-a/imaging-desk")[0], grpc.StatusCode.OK)

        # rdg-reader names it by itself; the signed text carries it to the clinic's verifiers.
        proc = self.final(self.rad, exam)
        self.assertIn("at desk county-a/imaging-desk", proc.stdout)
        out = self.save_report(exam)
        with open(f"{out}/report.txt") as f:
            self.assertIn("\ndesk: county-a/imaging-desk\n", f.read())
        verify = self.a1.run("verify", out, "--verify-ca", self.ca)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertIn("CN=reader-a-rad, desk county-a/imaging-desk, at ", verify.stdout)

    def test_clinics_see_only_their_reports(self):
        exam = self.fresh_ct()
        self.assertEqual(self.rad.run("claim", exam).returncode, 0)
        self.final(self.rad, exam)
        b1 = self.clinic("clinic-b1")
        self.assertEqual(b1.run("report", exam, "--out", os.path.join(self.workdir, "b")).returncode, 1)
        self.assertEqual(b1.run("ack", exam).returncode, 1)
        self.assertEqual(b1.run("--json", "reports").stdout.strip(), "")
        cursor_after = json.loads(self.a1.run("--json", "reports").stdout.splitlines()[-1])["cursor"]
        self.assertEqual(self.a1.run("reports", "--cursor", cursor_after).stdout.strip(), "")

    def test_watch_misses_nothing_across_a_restart(self):
        exams = [self.fresh_ct() for _ in range(3)]
        for e in exams:
            self.assertEqual(self.rad.run("claim", e).returncode, 0)
        watcher = self.a1.popen("--json", "reports", "--watch", "--max", "3")
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(watcher.stdout))
        reader.start()
        self.final(self.rad, exams[0])
        harness.wait_for(lambda: len(lines) >= 1, timeout=30, what="first report on the watch")
        self.gateway.stop()
        self.gateway.start()  # same data dir, same port
        self.final(self.rad, exams[1])
        self.final(self.rad, exams[2])
        self.assertEqual(watcher.wait(timeout=60), 0, watcher.stderr.read())
        reader.join(timeout=10)
        watcher.stdout.close()
        watcher.stderr.close()
        got = [json.loads(l)["report"]["content"]["exam_id"] for l in lines]
        self.assertEqual(got, exams)


if __name__ == "__main__":
    unittest.main()
