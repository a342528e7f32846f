"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) against the real gateway, with curl and the platform's
client certificates: a clinic finds and retrieves its own study (张三, written in GB18030, found
as UTF-8 by 张*), at study, series and instance level and at the root, keys it does not match on
named back in a Warning; the instances byte for byte as uploaded, streamed as multipart/related;
the metadata with the pixel data as a BulkDataURI that resolves, and the frame; frames of a
JPEG Lossless two-frame CT as the JPEG streams in the file, and 406 for a transfer syntax RDG
would have to transcode to; another clinic, an administrator and a reader of another county get
nothing; a reader of the exam's desk sees it in QIDO but retrieves it only once they claim it;
CORS for a configured viewer's origin only (its preflight without a certificate); no client
certificate, 401. STOW-RS stores and routes like an upload, refusing what is not DICOM part by
part, a repeat is a duplicate, an instance of another study than the one named is refused, and
STOW-RS shares the institution's upload limit with gRPC uploads (503, Retry-After). Then
Orthanc's DICOMweb plugin, as a county PACS with a clinic's certificate, retrieves the study from
RDG over DICOMweb."""
import email.parser
import email.policy
import hashlib
import importlib
import io
import json
import os
import subprocess
import tempfile
import threading
import unittest
import urllib.request

import pydicom
from pydicom.uid import generate_uid

import harness
from orthanc_peer import OrthancPeer
from test_fairness import upload_streams

common_pb2 = importlib.import_module("rdg.v1.common_pb2")
ingest_pb2 = importlib.import_module("rdg.v1.ingest_pb2")
ingest_pb2_grpc = importlib.import_module("rdg.v1.ingest_pb2_grpc")

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


class DicomWebCase(harness.GatewayTestCase):
    """A gateway serving DICOMweb, and curl to call it."""
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
            ds.PatientSex, ds.PatientBirthDate = "M", "19560312"  # linked as one patient
            ds.StudyDate, ds.AccessionNumber = "20261129", "A-" + study[-6:]
            paths.append(harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm")))
        result = self.clinic(clinic).json("upload", *paths)
        return study, series, paths, result["exams"][0]["exam_id"]

    def stow(self, who, parts, boundary="rdg-stow-test", path="/studies"):
        """POSTs `parts` ((content type, bytes)) as a STOW-RS request; (status, JSON answer)."""
        body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: " + t.encode() +
                        b"\r\n\r\n" + data + b"\r\n" for t, data in parts)
        body += b"--" + boundary.encode() + b"--\r\n"
        body_file = os.path.join(self.workdir, "stow-body")
        with open(body_file, "wb") as f:
            f.write(body)
        status, headers, answer = self.curl(
            who, path, method="POST",
            headers=[f'Content-Type: multipart/related; type="application/dicom"; '
                     f'boundary={boundary}', "Accept: application/dicom+json"],
            data=body_file)
        self.last_stow_headers = headers
        return status, (json.loads(answer) if answer.startswith(b"{") else answer.decode())

    def ct_instance(self, study, name="Li^Si=李^四", patient_id="HB-0077"):
        """A CT_small copy in `study` (a new series and instance), as bytes."""
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName, ds.PatientID = name, patient_id
        return harness.read_bytes(harness.write_dicom(
            ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm")))


class DicomWebTest(DicomWebCase):
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
        # Root-level series and instance searches (a viewer's "find the series" and an
        # instance by UID), the clinic's own only; with study keys too.
        series_found = self.json("clinic-a1", f"/series?Modality=CT&PatientID=HB-0042")
        self.assertIn(series, [x["0020000E"]["Value"][0] for x in series_found])
        self.assertNotIn(other, [x["0020000D"]["Value"][0] for x in series_found])
        self.assertEqual(self.json("clinic-a1", f"/series?Modality=MR&StudyInstanceUID={study}"),
                         [])
        one = instances[1]["00080018"]["Value"][0]
        (hit,) = self.json("clinic-a1", f"/instances?00080018={one}")
        self.assertEqual(hit["0020000D"]["Value"][0], study)
        self.assertEqual(self.json("clinic-a2", f"/instances?SOPInstanceUID={one}"), [])
        self.assertEqual(len(self.json("clinic-a1", f"/studies/{study}/instances?limit=1&offset=1")),
                         1)
        # A key RDG does not match on is named back (Warning 299), not silently dropped.
        status, headers, body = self.curl("clinic-a1", f"/studies?StudyDescription=HEAD&"
                                          f"StudyInstanceUID={study}&fuzzymatching=true",
                                          accept="application/dicom+json")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(json.loads(body)), 1)
        self.assertIn("299", headers["warning"])
        self.assertIn("StudyDescription", headers["warning"])
        self.assertIn("fuzzymatching", headers["warning"])
        self.assertNotIn("warning", self.curl("clinic-a1", "/studies?PatientID=HB-0042")[1])

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
        self.assertEqual(self.parts(headers, body), [
            ("application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1", ds.PixelData)])
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

    def test_a_reader_finds_the_priors_of_what_they_read_and_opens_only_their_claims(self):
        rad = self.reader("reader-a-rad")
        prior, _, _, prior_exam = self.upload_study()
        self.assertEqual(rad.run("claim", prior_exam).returncode, 0)
        proc = rad.run("report", prior_exam, "--final", "--findings", "双肺纹理清晰。",
                       "--impression", "未见明显异常。")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        current, series, _, exam = self.upload_study()  # the same patient, a year on
        # Before the claim: the worklist's study, but none of its series or instances, at the
        # root as under the study; the signed prior is not in the worklist.
        self.assertEqual(self.json("reader-a-rad", f"/series?StudyInstanceUID={current}"), [])
        self.assertEqual(self.json("reader-a-rad", f"/instances?StudyInstanceUID={current}"), [])
        self.assertEqual(self.curl("reader-a-rad", f"/studies/{current}/series",
                                   accept="application/dicom+json")[0], 403)
        found = [x["0020000D"]["Value"][0] for x in self.json("reader-a-rad", "/studies")]
        self.assertIn(current, found)
        self.assertNotIn(prior, found)
        # Claimed: the prior is found beside it (as rdg-reader priors lists it, audited), its
        # images still closed; the current exam's series open.
        self.assertEqual(rad.run("claim", exam).returncode, 0)
        found = [x["0020000D"]["Value"][0]
                 for x in self.json("reader-a-rad", "/studies?PatientID=HB-0042")]
        self.assertIn(prior, found)
        self.assertIn(current, found)
        self.assertEqual(len(self.json("reader-a-rad", f"/series?StudyInstanceUID={current}")), 1)
        self.assertEqual(self.json("reader-a-rad", f"/series?StudyInstanceUID={prior}"), [])
        self.assertEqual(self.curl("reader-a-rad", f"/studies/{prior}")[0], 403)
        self.assertIn("view_prior", [r[0] for r in self.gateway.query(
            "SELECT action FROM audit_log WHERE exam_id = ?", prior_exam)])
        # Another county's reader finds neither.
        found = [x["0020000D"]["Value"][0] for x in self.json("reader-b-rad", "/studies")]
        self.assertNotIn(prior, found)
        self.assertNotIn(current, found)

    def test_stow_rs_into_a_named_study_refuses_another_studys_instance(self):
        study, other = generate_uid(), generate_uid()
        mine, stray = self.ct_instance(study), self.ct_instance(other)
        status, answer = self.stow("clinic-a1", [("application/dicom", mine),
                                                 ("application/dicom", stray)],
                                   path=f"/studies/{study}")
        self.assertEqual(status, 202, answer)
        self.assertEqual(len(answer["00081199"]["Value"]), 1)
        (failed,) = answer["00081198"]["Value"]
        self.assertEqual(failed["00081197"]["Value"][0], 0xA900)
        self.assertIn(f"belongs to study {other}", failed["00091001"]["Value"][0])
        # The stray instance was not stored: its study is unknown; the named one holds one.
        self.assertEqual(self.json("clinic-a1", f"/studies?StudyInstanceUID={other}"), [])
        self.assertEqual(len(self.json("clinic-a1", f"/studies/{study}/instances")), 1)
        # Stored already elsewhere and sent again into the wrong study: refused, not moved.
        status, answer = self.stow("clinic-a1", [("application/dicom", mine)],
                                   path=f"/studies/{other}")
        self.assertEqual(status, 409, answer)
        self.assertIn("stored already", answer["00081198"]["Value"][0]["00091001"]["Value"][0])

    def test_compressed_frames_are_served_as_stored_and_never_transcoded(self):
        # A two-frame CT, JPEG Lossless (dcmcjpeg: one fragment per frame, an offset table).
        ds = pydicom.dcmread(CT_SMALL)
        study = ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.NumberOfFrames = 2
        ds.PixelData = ds.PixelData + bytes(len(ds.PixelData))
        native = harness.write_dicom(ds, os.path.join(self.workdir, "two-frames.dcm"))
        jpeg = os.path.join(self.workdir, "two-frames-jpeg.dcm")
        subprocess.run(["dcmcjpeg", "+e1", native, jpeg], check=True)
        compressed = pydicom.dcmread(jpeg)
        self.assertEqual(compressed.file_meta.TransferSyntaxUID, "1.2.840.10008.1.2.4.70")
        expected = [bytes(f).rstrip(b"\0") for f in pydicom.encaps.generate_pixel_data_frame(
            compressed.PixelData, 2)]
        self.clinic("clinic-a1").json("upload", jpeg)
        instance = (f"/studies/{study}/series/{ds.SeriesInstanceUID}/instances/"
                    f"{ds.SOPInstanceUID}")

        # OHIF's request (its type unquoted): each frame, as stored, naming its transfer syntax.
        status, headers, body = self.curl(
            "clinic-a1", instance + "/frames/2,1",
            accept="multipart/related; type=application/octet-stream; transfer-syntax=*")
        self.assertEqual(status, 200, body)
        frames = self.parts(headers, body)
        self.assertEqual([t for t, _ in frames],
                         ["application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.70"] * 2)
        self.assertEqual([f.rstrip(b"\0") for _, f in frames], [expected[1], expected[0]])
        self.assertTrue(frames[0][1].startswith(b"\xff\xd8"))  # a JPEG stream
        # Asked as image/jpeg: the same bytes, typed so.
        status, headers, body = self.curl(
            "clinic-a1", instance + "/frames/1", accept='multipart/related; type="image/jpeg"')
        self.assertEqual(status, 200, body)
        self.assertEqual(self.parts(headers, body)[0][0],
                         "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70")
        self.assertEqual(self.curl("clinic-a1", instance + "/frames/3")[0], 404)
        self.assertEqual(self.curl("clinic-a1", instance + "/frames/0")[0], 400)
        # A frame asked for again comes again (each read as it is sent, never all held).
        status, headers, body = self.curl("clinic-a1", instance + "/frames/1,1,1")
        self.assertEqual(status, 200, body)
        self.assertEqual([f.rstrip(b"\0") for _, f in self.parts(headers, body)], [expected[0]] * 3)

        # Asked for uncompressed data: RDG does not transcode, and says so (406), for frames
        # and for the instance; the instance itself comes as stored.
        explicit = "transfer-syntax=1.2.840.10008.1.2.1"
        status, _, body = self.curl(
            "clinic-a1", instance + "/frames/1",
            accept=f'multipart/related; type="application/octet-stream"; {explicit}')
        self.assertEqual(status, 406, body)
        self.assertIn(b"does not transcode", body)
        self.assertEqual(self.curl("clinic-a1", instance,
                                   accept=f'multipart/related; type="application/dicom"; '
                                          f'{explicit}')[0], 406)
        self.assertEqual(self.curl("clinic-a1", f"/studies/{study}", accept="application/dicom+json")[0], 406)
        status, headers, body = self.curl("clinic-a1", instance)
        self.assertEqual(status, 200, body)
        ((kind, data),) = self.parts(headers, body)
        self.assertEqual(kind, "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.70")
        self.assertEqual(data, harness.read_bytes(jpeg))

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
        repeat = answer["00081199"]["Value"][0]
        self.assertNotIn("00081196", repeat)  # a success, no Warning Reason (B007 means else)
        self.assertIn("already stored", repeat["00091001"]["Value"][0])
        # The instance's own WADO-RS URL, which retrieves it.
        url = repeat["00081190"]["Value"][0]
        self.assertIn("/instances/", url)
        status, headers, body = self.curl("clinic-a1", url[len(self.base):])
        self.assertEqual(status, 200)
        self.assertEqual(self.parts(headers, body)[0][1], files[0])
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


class StowUploadLimitTest(DicomWebCase):
    extra_config = DicomWebCase.extra_config + (
        "limits { max_concurrent_uploads_per_institution: 1 }\n")

    def test_stow_rs_and_grpc_uploads_share_the_institutions_limit(self):
        study = generate_uid()
        instance = self.ct_instance(study)
        with self.channel("clinic-a1") as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            release = threading.Event()

            def holding(first):  # one message, then nothing until released
                yield first
                release.wait(120)
            call = stub.Upload.future(holding(ingest_pb2.UploadRequest(
                open=ingest_pb2.OpenUploadRequest(kind=common_pb2.DICOM, size=1 << 20,
                                                  sha256=hashlib.sha256(b"hold").digest()),
                offset=0, data=b"x" * 10)), timeout=120)
            try:
                harness.wait_for(lambda: upload_streams(self.gateway) >= 1, 30,
                                 what="the gRPC upload stream")
                # The clinic's one slot is taken by its gRPC upload: STOW-RS is told to retry.
                status, answer = self.stow("clinic-a1", [("application/dicom", instance)])
                self.assertEqual(status, 503, answer)
                self.assertIn("per institution", answer)
                self.assertEqual(self.last_stow_headers.get("retry-after"), "5")
                # Another clinic is not held up by it.
                other = self.ct_instance(generate_uid(), patient_id="HB-0078")
                self.assertEqual(self.stow("clinic-a2", [("application/dicom", other)])[0], 200)
            finally:
                call.cancel()
                release.set()
        harness.wait_for(lambda: upload_streams(self.gateway) == 0 or None, 30,
                         what="the gRPC upload stream's end")
        status, answer = self.stow("clinic-a1", [("application/dicom", instance)])
        self.assertEqual(status, 200, answer)
        self.assert_gateway_alive()


if __name__ == "__main__":
    unittest.main()
