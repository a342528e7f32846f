"""DICOMweb (QIDO-RS, WADO-RS) against the real gateway, with curl and the platform's client
certificates: a clinic finds and retrieves its own study (张三, written in GB18030, found as
UTF-8 by 张*), the instances byte for byte as uploaded, streamed as multipart/related; the
metadata with the pixel data as a BulkDataURI that resolves, and the frame; another clinic, an
administrator and a reader of another county get nothing; a reader of the exam's desk sees it in
QIDO but retrieves it only once they claim it; CORS for a configured viewer's origin only (its
preflight without a certificate); no client certificate, 401; STOW-RS stores and routes like an upload, refusing what is not DICOM part by part,
and a repeat is a duplicate. Then Orthanc's DICOMweb plugin, as a county PACS with a clinic's certificate,
retrieves the study from RDG over DICOMweb."""
import email.parser
import email.policy
import io
import json
import os
import subprocess
import tempfile
import unittest
import urllib.request

import pydicom
from pydicom.uid import generate_uid

import harness
from orthanc_peer import OrthancPeer

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


class DicomWebTest(harness.GatewayTestCase):
    extra_config = ('dicomweb { listen: "127.0.0.1:0" '
                    'cors_origins: ["https://viewer.county-a.example"] }\n')

    def setUp(self):
        super().setUp()
        self.base = f"https://127.0.0.1:{self.gateway.dicomweb_port}/dicomweb"

    def curl(self, who, path, accept=None, method="GET", headers=(), check=True, data=None):
        """(status, headers, body bytes) of `path` asked with `who`'s certificate (None: none)."""
        out = os.path.join(self.workdir, "body")
        head = os.path.join(self.workdir, "head")
        argv = ["curl", "-sS", "--max-time", "30", "-X", method, "--cacert",
                os.path.join(self.pki, "ca.pem"), "-o", out, "-D", head]
        if who:
            argv += ["--cert", os.path.join(self.pki, f"{who}.pem"),
                     "--key", os.path.join(self.pki, f"{who}.key")]
        if accept:
            argv += ["-H", f"Accept: {accept}"]
        for h in headers:
            argv += ["-H", h]
        if data:
            argv += ["--data-binary", "@" + data]
        proc = subprocess.run(argv + [self.base + path], capture_output=True, text=True)
        if proc.returncode != 0:
            if check:
                self.fail(f"curl {path}: {proc.returncode} {proc.stderr}")
            return proc.returncode, {}, b""
        with open(head, newline="") as f:
            # The last response's headers: a large body is sent after a "100 Continue".
            blocks = [b for b in f.read().split("\r\n\r\n") if b.startswith("HTTP/")]
            lines = blocks[-1].split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers, harness.read_bytes(out)

    def json(self, who, path, expect=200):
        status, headers, body = self.curl(who, path, accept="application/dicom+json")
        self.assertEqual(status, expect, body)
        if status == 200:
            self.assertTrue(headers["content-type"].startswith("application/dicom+json"))
            return json.loads(body)
        return body.decode()

    def parts(self, headers, body):
        """The parts of a multipart/related answer: (content type, bytes)."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + body)
        self.assertTrue(message.is_multipart())
        return [(p.get_content_type() + "".join(f"; {k}={v}" for k, v in p.get_params()[1:]),
                 p.get_payload(decode=True)) for p in message.iter_parts()]

    def upload_study(self, clinic="clinic-a1", instances=2):
        study, series = generate_uid(), generate_uid()
        paths = []
        for n in range(instances):
            ds = pydicom.dcmread(CT_SMALL)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = n + 1
            ds.SpecificCharacterSet = "GB18030"
            ds.PatientName, ds.PatientID = "Zhang^San=张^三", "HB-0042"
            ds.StudyDate, ds.AccessionNumber = "20261129", "A-" + study[-6:]
            paths.append(harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm")))
        result = self.clinic(clinic).json("upload", *paths)
        return study, series, paths, result["exams"][0]["exam_id"]

    def test_a_clinic_finds_and_retrieves_its_own_study_and_nobody_else_does(self):
        study, series, paths, exam = self.upload_study()
        other, _, _, _ = self.upload_study("clinic-a2", instances=1)

        found = self.json("clinic-a1", "/studies")
        uids = [s["0020000D"]["Value"][0] for s in found]
        self.assertIn(study, uids)
        self.assertNotIn(other, uids, "another clinic's study")
        mine = found[uids.index(study)]
        self.assertEqual(mine["00100010"]["Value"][0],
                         {"Alphabetic": "Zhang^San", "Ideographic": "张^三"})
        self.assertEqual(mine["00201208"]["Value"][0], 2)
        self.assertEqual(mine["00080061"]["Value"], ["CT"])
        self.assertEqual(mine["00081190"]["Value"][0], f"{self.base}/studies/{study}")
        for query in ("PatientName=张*", "PatientName=zhang*", "PatientID=HB-0042",
                      "StudyDate=20261101-20261130", f"StudyInstanceUID={study}",
                      "ModalitiesInStudy=CT"):
            self.assertIn(study, [s["0020000D"]["Value"][0]
                                  for s in self.json("clinic-a1", "/studies?" + query)], query)
        self.assertEqual(self.json("clinic-a1", "/studies?PatientID=nobody"), [])
        self.assertEqual(len(self.json("clinic-a1", "/studies?limit=1")), 1)
        self.assertEqual(len(self.json("clinic-a1", f"/studies/{study}/series")), 1)
        instances = self.json("clinic-a1", f"/studies/{study}/series/{series}/instances")
        self.assertEqual(len(instances), 2)

        # WADO-RS: the study as multipart/related, each instance byte for byte as uploaded.
        status, headers, body = self.curl(
            "clinic-a1", f"/studies/{study}", accept='multipart/related; type="application/dicom"')
        self.assertEqual(status, 200, body)
        self.assertIn('type="application/dicom"', headers["content-type"])
        got = self.parts(headers, body)
        self.assertEqual(len(got), 2)
        self.assertTrue(all(t.startswith("application/dicom") for t, _ in got))
        self.assertEqual(sorted(b for _, b in got), sorted(harness.read_bytes(p) for p in paths))
        one = instances[0]["00080018"]["Value"][0]
        status, headers, body = self.curl("clinic-a1", f"/studies/{study}/series/{series}/instances/{one}")
        self.assertEqual(status, 200)
        self.assertEqual(len(self.parts(headers, body)), 1)

        # Metadata: UTF-8 names, pixel data by reference, and the reference resolves.
        meta = self.json("clinic-a1", f"/studies/{study}/series/{series}/instances/{one}/metadata")
        self.assertEqual(meta[0]["00100010"]["Value"][0]["Ideographic"], "张^三")
        uri = meta[0]["7FE00010"]["BulkDataURI"]
        self.assertTrue(uri.startswith(self.base), uri)
        status, headers, body = self.curl("clinic-a1", uri[len(self.base):])
        self.assertEqual(status, 200, body)
        (kind, pixels), = self.parts(headers, body)
        self.assertEqual(kind, "application/octet-stream")
        ds = pydicom.dcmread(paths[0])
        self.assertEqual(pixels, ds.PixelData)
        # Frames (OHIF's wadors mode): the one frame of this CT, and no second one.
        status, headers, body = self.curl("clinic-a1", uri[len(self.base):].replace(
            "/bulkdata/7FE00010", "/frames/1"))
        self.assertEqual(status, 200, body)
        self.assertEqual(self.parts(headers, body), [("application/octet-stream", ds.PixelData)])
        self.assertEqual(self.curl("clinic-a1", uri[len(self.base):].replace(
            "/bulkdata/7FE00010", "/frames/2"))[0], 404)

        # Nobody else: another clinic, an administrator, a reader of another county.
        self.assertEqual(self.curl("clinic-a2", f"/studies/{study}")[0], 404)
        self.assertEqual(self.curl("clinic-a2", f"/studies/{study}/metadata")[0], 404)
        self.assertEqual(self.curl("admin", "/studies")[0], 403)
        self.assertEqual(self.curl("admin", f"/studies/{study}")[0], 403)
        self.assertNotIn(study, [s["0020000D"]["Value"][0]
                                 for s in self.json("reader-b-rad", "/studies")])
        self.assertEqual(self.curl("reader-b-rad", f"/studies/{study}")[0], 404)
        # No certificate: nothing but a CORS preflight is answered.
        for path in ("/studies", f"/studies/{study}", f"/studies/{study}/metadata"):
            status, _, body = self.curl(None, path)
            self.assertEqual(status, 401, path)
            self.assertIn(b"client certificate", body)

        # Every retrieval is in the audit log, with the exam.
        actions = [r[0] for r in self.gateway.query(
            "SELECT action FROM audit_log WHERE exam_id = ?", exam)]
        self.assertIn("dicomweb_retrieve", actions)
        self.assertIn("dicomweb_metadata", actions)

    def test_a_reader_sees_their_desks_exam_and_retrieves_it_once_claimed(self):
        study, _, paths, exam = self.upload_study()
        rad = self.reader("reader-a-rad")
        self.assertIn(study, [s["0020000D"]["Value"][0]
                              for s in self.json("reader-a-rad", "/studies")])
        status, _, body = self.curl("reader-a-rad", f"/studies/{study}")
        self.assertEqual(status, 403, body)
        self.assertIn(b"claim", body)
        self.assertEqual(rad.run("claim", exam).returncode, 0)
        status, headers, body = self.curl("reader-a-rad", f"/studies/{study}")
        self.assertEqual(status, 200, body)
        self.assertEqual(sorted(b for _, b in self.parts(headers, body)),
                         sorted(harness.read_bytes(p) for p in paths))
        # Another reader of the same desk, without the claim: refused, with the reason.
        self.assertEqual(self.curl("reader-a-rad2", f"/studies/{study}")[0], 403)

    def stow(self, who, parts, boundary="rdg-stow-test"):
        """POSTs `parts` ((content type, bytes)) as a STOW-RS request; (status, JSON answer)."""
        body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: " + t.encode() +
                        b"\r\n\r\n" + data + b"\r\n" for t, data in parts)
        body += b"--" + boundary.encode() + b"--\r\n"
        path = os.path.join(self.workdir, "stow-body")
        with open(path, "wb") as f:
            f.write(body)
        status, _, answer = self.curl(
            who, "/studies", method="POST",
            headers=[f'Content-Type: multipart/related; type="application/dicom"; '
                     f'boundary={boundary}', "Accept: application/dicom+json"],
            data=path)
        return status, (json.loads(answer) if answer.startswith(b"{") else answer.decode())

    def test_stow_rs_stores_and_routes_like_an_upload(self):
        study, series = generate_uid(), generate_uid()
        files = []
        for n in range(2):
            ds = pydicom.dcmread(CT_SMALL)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.PatientName, ds.PatientID = "Li^Si=李^四", "HB-0077"
            files.append(harness.read_bytes(harness.write_dicom(
                ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))))
        status, answer = self.stow("clinic-a1", [
            ("application/dicom", files[0]), ("application/dicom", files[1]),
            ("application/dicom", b"not a DICOM file at all"),
            ("text/plain", b"a note")])
        self.assertEqual(status, 202, answer)  # some stored, some failed
        stored = answer["00081199"]["Value"]
        failed = answer["00081198"]["Value"]
        self.assertEqual(len(stored), 2)
        self.assertEqual(len(failed), 2)
        self.assertEqual({f["00081197"]["Value"][0] for f in failed}, {0xC000})
        self.assertEqual(sorted(i["00081155"]["Value"][0] for i in stored),
                         sorted(pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID for f in files))
        self.assertEqual(stored[0]["00081150"]["Value"][0], "1.2.840.10008.5.1.4.1.1.2")
        self.assertEqual(answer["00081190"]["Value"][0], f"{self.base}/studies/{study}")

        # Acknowledged means durable: the gateway killed right after the answer still has them.
        self.gateway.kill()
        self.gateway.start()
        self.base = f"https://127.0.0.1:{self.gateway.dicomweb_port}/dicomweb"

        # Stored as an upload: the clinic's exam, routed to county A's imaging desk, the bytes
        # retrievable as sent.
        exams = self.clinic("clinic-a1").json("exams")["exams"]
        exam = next(e for e in exams if e["study_instance_uid"] == study)
        self.assertEqual(exam["state"], "ROUTED")
        self.assertIn(study, [x["0020000D"]["Value"][0]
                              for x in self.json("reader-a-rad", "/studies")])
        status, headers, body = self.curl("clinic-a1", f"/studies/{study}")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(b for _, b in self.parts(headers, body)), sorted(files))

        # Sent again: duplicates, nothing added.
        status, answer = self.stow("clinic-a1", [("application/dicom", files[0])])
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["00081199"]["Value"][0]["00081196"]["Value"][0], 0xB007)
        self.assertEqual(len(self.json("clinic-a1", f"/studies/{study}/instances")), 2)

        # Only clinics store; a body that is not multipart/related is refused as such.
        self.assertEqual(self.stow("reader-a-rad", [("application/dicom", files[0])])[0], 403)
        self.assertEqual(self.stow("admin", [("application/dicom", files[0])])[0], 403)
        path = os.path.join(self.workdir, "plain")
        with open(path, "wb") as f:
            f.write(files[0])
        status, _, _ = self.curl("clinic-a1", "/studies", method="POST",
                                 headers=["Content-Type: application/dicom"], data=path)
        self.assertEqual(status, 415)
        # A body cut before its closing boundary: 400, and what was whole before it is kept.
        with open(path, "wb") as f:
            f.write(b"--cut\r\nContent-Type: application/dicom\r\n\r\n" + files[0][:500])
        status, _, body = self.curl(
            "clinic-a1", "/studies", method="POST",
            headers=['Content-Type: multipart/related; type="application/dicom"; boundary=cut'],
            data=path)
        self.assertEqual(status, 400, body)
        self.assertIn(b"closing boundary", body)
        # Nothing is left staged.
        staged = os.listdir(os.path.join(self.gateway.data_dir, "uploads"))
        self.assertEqual([f for f in staged if f.startswith("stow-")], [])

    def test_cors_for_the_configured_viewer_only(self):
        # A browser's preflight carries no client certificate.
        status, headers, _ = self.curl(None, "/studies", method="OPTIONS",
                                       headers=["Origin: https://viewer.county-a.example",
                                                "Access-Control-Request-Method: GET"])
        self.assertEqual(status, 204)
        self.assertEqual(headers["access-control-allow-origin"], "https://viewer.county-a.example")
        self.assertEqual(headers["access-control-allow-credentials"], "true")
        status, headers, _ = self.curl("clinic-a1", "/studies",
                                       headers=["Origin: https://viewer.county-a.example"])
        self.assertEqual(status, 200)
        self.assertEqual(headers["access-control-allow-origin"], "https://viewer.county-a.example")
        status, headers, _ = self.curl("clinic-a1", "/studies",
                                       headers=["Origin: https://evil.example"])
        self.assertEqual(status, 200)
        self.assertNotIn("access-control-allow-origin", headers)

    def test_orthanc_retrieves_a_study_over_dicomweb_with_a_clinic_certificate(self):
        study, _, paths, _ = self.upload_study()
        pacs = OrthancPeer(self.workdir, ae_title="COUNTY_PACS")
        pacs.extra_config = {
            "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
            "HttpsCACertificates": os.path.join(self.pki, "ca.pem"),
            "HttpsVerifyPeers": True,
            "DicomWeb": {"Enable": True, "Servers": {"rdg": {
                "Url": self.base + "/",
                "CertificateFile": os.path.join(self.pki, "clinic-a1.pem"),
                "CertificateKeyFile": os.path.join(self.pki, "clinic-a1.key"),
                "CertificateKeyPassword": ""}}},
        }
        pacs.start()
        try:
            answer = pacs.post("/dicom-web/servers/rdg/retrieve",
                               {"Resources": [{"Study": study}], "Synchronous": True})
            harness.wait_for(lambda: len(pacs.instances_of_study(study)) == 2 or None,
                             timeout=60, what="the study at Orthanc")
            for p in paths:
                ds = pydicom.dcmread(p)
                stored = pacs.instance_file(ds.SOPInstanceUID)
                self.assertEqual(harness.dicom_dataset_bytes(stored),
                                 harness.dicom_dataset_bytes(harness.read_bytes(p)), answer)
        finally:
            pacs.stop()


if __name__ == "__main__":
    unittest.main()
