"""Ingest end to end: the real rdg-gateway and rdg-clinic over mTLS on loopback.

Covers the pydicom corpus, idempotent and conflicting re-uploads, rejections that leave no trace,
size limits, resumable uploads after a cut connection and after SIGTERM, crash safety under
SIGKILL, institution isolation and roles, refused TLS clients, and bad configurations.
Every wait is a poll with a deadline (harness.wait_for); every file lives in a per-test temp dir.
"""
import collections
import copy
import glob
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import unittest
import warnings

import grpc
import pydicom
from pydicom.uid import generate_uid

import harness
from harness import read_bytes, write_dicom

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
MB = 1000 * 1000
BIG_SIDE = 4896  # 4896 x 4896 x 16 bit: a ~48 MB CT slice


# ------------------------------------------------------------------------------------------------
# Helpers


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ct_variant(rows=None, columns=None, study_uid=None, series_uid=None, pixel_data=None):
    """CT_small with a fresh SOP Instance UID (and optionally other geometry/UIDs)."""
    ds = pydicom.dcmread(CT_SMALL)
    sop = generate_uid()
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    if study_uid:
        ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    if rows:
        ds.Rows, ds.Columns = rows, columns or rows
        n = ds.Rows * ds.Columns * (ds.BitsAllocated // 8) * ds.get("SamplesPerPixel", 1)
        ds.PixelData = pixel_data if pixel_data is not None else os.urandom(n)
    return ds


def make_big_dicom(directory, side=BIG_SIDE):
    """A valid ~48 MB DICOM: CT_small enlarged, random pixels, new SOP Instance UID."""
    path = os.path.join(directory, "big-ct.dcm")
    write_dicom(ct_variant(rows=side), path)
    return path


def looks_like_dicom(path):
    """rdg-clinic's folder rule: DICM at byte 128 or a .dcm/.dicom extension, DICOMDIR skipped."""
    name = os.path.basename(path)
    if name.startswith("DICOMDIR"):
        return False
    if os.path.splitext(name)[1].lower() in (".dcm", ".dicom"):
        return True
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def dicom_uids(path):
    """(study, series, sop) UIDs as pydicom reads them (force=True); None where absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's notes on the deliberately odd files
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - unreadable files simply have no UIDs
        return None, None, None

    def uid(keyword):
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: BLE001
            return None
        return str(value).strip("\0 ") if value else None
    return uid("StudyInstanceUID"), uid("SeriesInstanceUID"), uid("SOPInstanceUID")


class IngestTestCase(harness.GatewayTestCase):
    """Shared helpers over one test's gateway and data dir."""

    def tmp(self, name):
        path = os.path.join(self.workdir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def exams(self, clinic):
        listed = clinic.json("exams", "--limit", "100000", timeout=60)
        return listed.get("exams", [])

    def download(self, clinic, exam_id, out):
        """{sop_instance_uid: bytes} of one exam via rdg-clinic download."""
        proc = clinic.run("--json", "download", exam_id, "--out", out, timeout=120)
        self.assertEqual(proc.returncode, 0, f"download {exam_id}: {proc.stdout}{proc.stderr}")
        got = {}
        for name in os.listdir(out):
            self.assertTrue(name.endswith(".dcm"), f"unexpected file {name} in download of {exam_id}")
            got[name[:-len(".dcm")]] = read_bytes(os.path.join(out, name))
        return got

    def download_all(self, clinic, where):
        """{sop: (exam_id, bytes)} over every exam the clinic lists."""
        stored = {}
        for exam in self.exams(clinic):
            got = self.download(clinic, exam["exam_id"], os.path.join(where, exam["exam_id"]))
            self.assertEqual(len(got), exam["instance_count"],
                             f"exam {exam['exam_id']} lists {exam['instance_count']} instances")
            for sop, data in got.items():
                self.assertNotIn(sop, stored, f"SOP {sop} downloaded from two exams")
                stored[sop] = (exam["exam_id"], data)
        return stored

    def assert_nothing_stored(self, gateway=None):
        gateway = gateway or self.gateway
        self.assertEqual(gateway.query("SELECT exam_id FROM exams"), [])
        self.assertEqual(gateway.query("SELECT sop_instance_uid FROM objects"), [])
        self.assertEqual(gateway.query("SELECT session_id FROM upload_sessions"), [])
        self.assertEqual(gateway.blob_files(), [])
        self.assertEqual(gateway.upload_files(), [])

    def wait_part_file(self, min_bytes, proc=None, timeout=60):
        """Polls until an uploads/*.part file holds more than min_bytes; returns its path."""
        def check():
            self.assert_gateway_alive()
            if proc is not None and proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"upload finished too early ({proc.returncode}): {out}{err}")
            for path in self.gateway.upload_files():
                try:
                    if path.endswith(".part") and os.path.getsize(path) > min_bytes:
                        return path
                except FileNotFoundError:
                    pass
            return None
        return harness.wait_for(check, timeout, what=f"a part file over {min_bytes} bytes")

    def wait_session_settled(self, part, timeout=30, quiet=0.5):
        """Polls until the session row exists and the part file's size has not changed for
        `quiet` seconds (the gateway has noticed the broken stream); returns the size."""
        session = os.path.basename(part)[:-len(".part")]
        state = {"size": -1, "since": time.monotonic()}

        def settled():
            size = os.path.getsize(part)
            now = time.monotonic()
            if size != state["size"]:
                state["size"], state["since"] = size, now
                return None
            rows = self.gateway.query("SELECT size FROM upload_sessions WHERE session_id = ?", session)
            return rows and now - state["since"] >= quiet and size
        return harness.wait_for(settled, timeout, interval=0.05, what="the interrupted session to settle")

    def background(self, clinic, *args):
        proc = clinic.popen(*args)

        def reap():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self.addCleanup(reap)
        return proc

    def second_gateway(self, name, extra_config):
        workdir = self.tmp(name)
        gw = harness.Gateway(workdir, self.pki, extra_config).start()

        def finish():
            crash = gw.crash_report()
            gw.stop()
            if crash:
                self.fail(crash)
        self.addCleanup(finish)
        return gw


# ------------------------------------------------------------------------------------------------


class IngestTest(IngestTestCase):

    # 1 ------------------------------------------------------------------------------------------
    def test_pydicom_corpus(self):
        clinic = self.clinic("clinic-a1")
        out = clinic.json("upload", harness.PYDICOM_FILES, expect_code=1, timeout=120)

        expected = sorted(p for p in glob.glob(os.path.join(harness.PYDICOM_FILES, "**"), recursive=True)
                          if os.path.isfile(p) and looks_like_dicom(p))
        files = {f["path"]: f for f in out["files"]}
        self.assertEqual(len(files), len(out["files"]), "a file reported twice")
        self.assertEqual(sorted(files), expected, "files uploaded from the folder")
        self.assertTrue(any("/dicomdirtests/" in p for p in expected))
        for skipped in out["skipped"]:
            path = skipped if isinstance(skipped, str) else skipped.get("path")
            self.assertNotIn(path, files)

        digest = {p: sha256_file(p) for p in files}
        uids = {p: dicom_uids(p) for p in files}
        ok = {p: f for p, f in files.items() if f["ok"]}
        bad = {p: f for p, f in files.items() if not f["ok"]}
        codes = collections.Counter(f["code"] for f in bad.values())
        print(f"\n  {len(ok)} stored/duplicate, rejected: {dict(codes)}")

        # Exactly one stored content per SOP Instance UID; the first upload of it is not a duplicate.
        stored = {}
        for p, f in ok.items():
            sop = f["sop_instance_uid"]
            self.assertEqual(uids[p][2], sop, f"{p}: gateway and pydicom disagree on the SOP UID")
            stored.setdefault(sop, set()).add(digest[p])
            self.assertEqual(f["bytes_sent"], f["size"] - f["resumed_from"])
        for sop, contents in stored.items():
            self.assertEqual(len(contents), 1, f"SOP {sop} accepted with different contents")
            firsts = [p for p, f in ok.items() if f["sop_instance_uid"] == sop and not f["duplicate"]]
            self.assertEqual(len(firsts), 1, f"SOP {sop}: non-duplicate acceptances {firsts}")
        stored = {sop: next(iter(c)) for sop, c in stored.items()}

        # Rejections: only conflicts and invalid files; a conflict names the UID and is a real one.
        for p, f in bad.items():
            self.assertIn(f["code"], ("ALREADY_EXISTS", "INVALID_ARGUMENT"), f"{p}: {f}")
            self.assertTrue(f.get("error"), f"{p}: rejection without a message")
            sop = uids[p][2]
            if f["code"] == "ALREADY_EXISTS":
                self.assertIn(sop, stored, f"{p}: ALREADY_EXISTS but its UID was not stored")
                self.assertNotEqual(digest[p], stored[sop], f"{p}: same bytes must be a duplicate")
                self.assertIn(sop, f["error"], f"{p}: the conflict message must name the UID")
            if sop in stored:
                self.assertNotEqual(digest[p], stored[sop], f"{p}: same bytes rejected")
        for p in files:
            sop = uids[p][2]
            if sop in stored and digest[p] != stored[sop]:
                self.assertFalse(files[p]["ok"], f"{p}: different bytes accepted for {sop}")

        # Known bad and known good files.
        for name in ("MR_truncated.dcm", "rtplan_truncated.dcm"):
            f = files[os.path.join(harness.PYDICOM_FILES, name)]
            self.assertFalse(f["ok"], name)
            self.assertEqual(f["code"], "INVALID_ARGUMENT", f"{name}: {f}")
        for name in ("CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm"):
            p = os.path.join(harness.PYDICOM_FILES, name)
            f = files[p]
            if not f["ok"]:  # allowed only when a same-UID variant won
                self.assertEqual(f["code"], "ALREADY_EXISTS", f"{name}: {f}")
                self.assertIn(uids[p][2], stored, name)
        for p in files:
            if "/dicomdirtests/" in p:
                self.assertTrue(files[p]["ok"], f"{p}: {files[p]}")

        # Exams: one per study, the listing equals the upload's report.
        exam_of_study, study_of_exam = {}, {}
        for p, f in ok.items():
            study = uids[p][0]
            self.assertTrue(study, p)
            exam_of_study.setdefault(study, set()).add(f["exam_id"])
            study_of_exam.setdefault(f["exam_id"], set()).add(study)
        for study, exams in exam_of_study.items():
            self.assertEqual(len(exams), 1, f"study {study} split over exams {exams}")
        for exam, studies in study_of_exam.items():
            self.assertEqual(len(studies), 1, f"exam {exam} mixes studies {studies}")
        listed = self.exams(clinic)
        listed_ids = sorted(e["exam_id"] for e in listed)
        self.assertEqual(len(set(listed_ids)), len(listed_ids))
        self.assertEqual(listed_ids, sorted(e["exam_id"] for e in out["exams"]))
        self.assertEqual(listed_ids, sorted(study_of_exam))

        sops_of_exam = collections.defaultdict(set)
        for f in ok.values():
            sops_of_exam[f["exam_id"]].add(f["sop_instance_uid"])
        reported = {e["exam_id"]: e for e in out["exams"]}
        for exam in listed:
            eid = exam["exam_id"]
            self.assertEqual(exam["origin_institution"], "clinic-a1")
            self.assertEqual(exam["study_instance_uid"], next(iter(study_of_exam[eid])))
            self.assertEqual(exam["instance_count"], len(sops_of_exam[eid]), eid)
            self.assertEqual(reported[eid]["exam_instance_count"], len(sops_of_exam[eid]), eid)
            size_of = {f["sop_instance_uid"]: f["size"] for f in ok.values() if f["exam_id"] == eid}
            self.assertEqual(int(exam["total_bytes"]), sum(size_of.values()), eid)

        # Every stored instance comes back byte for byte, in its exam.
        downloaded = self.download_all(clinic, self.tmp("download"))
        self.assertEqual(sorted(downloaded), sorted(stored))
        for p, f in ok.items():
            exam_id, data = downloaded[f["sop_instance_uid"]]
            self.assertEqual(exam_id, f["exam_id"], p)
            self.assertEqual(hashlib.sha256(data).hexdigest(), digest[p], p)
            self.assertEqual(data, read_bytes(p), p)

    # 2 ------------------------------------------------------------------------------------------
    def test_idempotent_reupload(self):
        clinic = self.clinic("clinic-a1")
        first = clinic.json("upload", CT_SMALL, timeout=60)["files"][0]
        self.assertTrue(first["ok"])
        self.assertFalse(first["duplicate"])
        blobs = self.gateway.blob_files()
        self.assertEqual(len(blobs), 1)

        again = clinic.json("upload", CT_SMALL, timeout=60)
        second = again["files"][0]
        self.assertTrue(second["ok"], second)
        self.assertTrue(second["duplicate"], second)
        self.assertEqual(second["exam_id"], first["exam_id"])
        self.assertEqual(second["sop_instance_uid"], first["sop_instance_uid"])
        self.assertEqual(again["exams"][0]["exam_instance_count"], 1)
        [exam] = self.exams(clinic)
        self.assertEqual(exam["instance_count"], 1)
        self.assertEqual(int(exam["total_bytes"]), os.path.getsize(CT_SMALL))
        self.assertEqual(self.gateway.blob_files(), blobs)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(1,)])

    # 3 ------------------------------------------------------------------------------------------
    def test_conflicting_bytes_rejected(self):
        clinic = self.clinic("clinic-a1")
        original = clinic.json("upload", CT_SMALL, timeout=60)["files"][0]
        self.assertTrue(original["ok"])
        data = bytearray(read_bytes(CT_SMALL))
        data[-101] ^= 0x01  # one byte of the pixel data (the file ends with PixelData)
        changed = os.path.join(self.tmp("in"), "CT_small_changed.dcm")
        with open(changed, "wb") as f:
            f.write(data)

        out = clinic.json("upload", changed, expect_code=1, timeout=60)
        f = out["files"][0]
        print(f"\n  conflict: {f.get('code')}: {f.get('error')}")
        self.assertFalse(f["ok"])
        self.assertEqual(f["code"], "ALREADY_EXISTS")
        self.assertIn(original["sop_instance_uid"], f["error"])
        got = self.download(clinic, original["exam_id"], self.tmp("out"))
        self.assertEqual(got, {original["sop_instance_uid"]: read_bytes(CT_SMALL)})
        self.assertEqual(len(self.gateway.blob_files()), 1)
        self.assertEqual(self.gateway.upload_files(), [])

    # 4 ------------------------------------------------------------------------------------------
    def test_rejections_leave_no_trace(self):
        src = self.tmp("in")
        ct = pydicom.dcmread(CT_SMALL)
        phi = [str(ct.PatientName), str(ct.PatientID)]
        inputs = {}
        inputs["garbage"] = os.path.join(src, "x.dcm")
        with open(inputs["garbage"], "wb") as f:
            f.write(os.urandom(20000))
        inputs["text"] = os.path.join(src, "notes.txt")
        with open(inputs["text"], "w") as f:
            f.write("Patient referred for chest X-ray, please read.\n" * 50)
        inputs["half"] = os.path.join(src, "CT_small_half.dcm")
        whole = read_bytes(CT_SMALL)
        with open(inputs["half"], "wb") as f:
            f.write(whole[:len(whole) // 2])
        inputs["empty"] = os.path.join(src, "empty.dcm")
        open(inputs["empty"], "wb").close()
        ds = ct_variant()
        del ds.StudyInstanceUID
        inputs["no-study-uid"] = write_dicom(ds, os.path.join(src, "no_study_uid.dcm"))
        ds = ct_variant()
        del ds.SOPInstanceUID  # the file meta still carries MediaStorageSOPInstanceUID
        inputs["no-sop-uid"] = write_dicom(ds, os.path.join(src, "no_sop_uid.dcm"))
        self.assertNotIn("StudyInstanceUID", pydicom.dcmread(inputs["no-study-uid"]))
        self.assertNotIn("SOPInstanceUID", pydicom.dcmread(inputs["no-sop-uid"]))

        clinic = self.clinic("clinic-a1")
        out = clinic.json("upload", *inputs.values(), expect_code=1, timeout=60)
        by_path = {f["path"]: f for f in out["files"]}
        print()
        for kind, path in inputs.items():
            self.assertIn(path, by_path, f"{kind} was not uploaded: {out}")
            f = by_path[path]
            print(f"  {kind:13} {f.get('code')}: {f.get('error')}")
            self.assertFalse(f["ok"], f"{kind}: {f}")
            self.assertEqual(f["code"], "INVALID_ARGUMENT", f"{kind}: {f}")
            message = f.get("error", "")
            self.assertGreater(len(message), 15, f"{kind}: message too terse to act on: {message!r}")
            for secret in phi:
                self.assertNotIn(secret, message, f"{kind}: patient data in the error message")
        self.assertEqual(out["exams"], [])
        self.assert_nothing_stored()

        # Over limits.max_object_bytes: refused before anything is kept, small or session upload.
        # (The gateway insists on max_chunk_bytes <= max_object_bytes, so lower both.)
        limited = self.second_gateway(
            "limited", "limits { max_object_bytes: 100000 max_chunk_bytes: 100000 }\n")
        big = {"200k": write_dicom(ct_variant(rows=320), os.path.join(src, "ct_200k.dcm")),
               "2m": write_dicom(ct_variant(rows=1024), os.path.join(src, "ct_2m.dcm"))}
        self.assertGreater(os.path.getsize(big["200k"]), 200000)
        self.assertLess(os.path.getsize(big["200k"]), 1 << 20)  # the one-message upload path
        self.assertGreater(os.path.getsize(big["2m"]), 1 << 20)  # the persisted-session path
        out = harness.Clinic(limited, "clinic-a1").json("upload", *big.values(), expect_code=1,
                                                        timeout=60)
        by_path = {f["path"]: f for f in out["files"]}
        for kind, path in big.items():
            f = by_path[path]
            print(f"  {kind:13} {f.get('code')}: {f.get('error')}")
            self.assertFalse(f["ok"], f"{kind}: {f}")
            self.assertEqual(f["code"], "RESOURCE_EXHAUSTED", f"{kind}: {f}")
            self.assertIn("max_object_bytes", f["error"], f"{kind}: not the object size limit")
        self.assert_nothing_stored(limited)
        # ... while an object under the limit is still accepted there.
        ok = harness.Clinic(limited, "clinic-a1").json("upload", CT_SMALL, timeout=60)["files"][0]
        self.assertTrue(ok["ok"], ok)

    # 5 ------------------------------------------------------------------------------------------
    def test_cut_connection_resumes(self):
        big = make_big_dicom(self.tmp("in"))
        size = os.path.getsize(big)
        clinic = self.clinic("clinic-a1")
        proc = self.background(clinic, "--json", "upload", big, "--max-rate", "20")
        part = self.wait_part_file(8 * MB, proc)
        proc.kill()
        proc.communicate(timeout=30)
        kept = self.wait_session_settled(part)
        self.assertGreater(kept, 0)
        self.assertLess(kept, size)

        out = clinic.json("upload", big, timeout=120)
        f = out["files"][0]
        print(f"\n  size {size}, part file {kept}, resumed_from {f['resumed_from']}, "
              f"bytes_sent {f['bytes_sent']}")
        self.assertTrue(f["ok"], f)
        self.assertFalse(f["duplicate"])
        self.assertGreater(f["resumed_from"], 0)
        self.assertLessEqual(f["resumed_from"], kept)
        self.assertEqual(f["bytes_sent"], size - f["resumed_from"])
        got = self.download(clinic, f["exam_id"], self.tmp("out"))
        self.assertEqual(list(got), [f["sop_instance_uid"]])
        self.assertEqual(hashlib.sha256(got[f["sop_instance_uid"]]).hexdigest(), sha256_file(big))
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM upload_sessions"), [(0,)])
        self.assertEqual(self.gateway.upload_files(), [])

    # 6 ------------------------------------------------------------------------------------------
    def test_isolation_and_roles(self):
        a1 = self.clinic("clinic-a1")
        f = a1.json("upload", CT_SMALL, timeout=60)["files"][0]
        self.assertTrue(f["ok"])
        exam_id = f["exam_id"]

        b1 = self.clinic("clinic-b1")
        self.assertEqual(self.exams(b1), [])
        out = self.tmp("b1-download")
        proc = b1.run("--json", "download", exam_id, "--out", out, timeout=60)
        print(f"\n  clinic-b1 download {exam_id}: exit {proc.returncode}: {proc.stderr.strip()}")
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertEqual(os.listdir(out), [])
        with self.channel("clinic-b1") as channel:
            with self.assertRaises(grpc.RpcError) as err:
                list(harness.raw_stub(channel, "/rdg.v1.ExamService/DownloadExam", streaming=True)(
                    harness.string_field(1, exam_id), timeout=30))
            self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertNotIn("CompressedSamples", err.exception.details() or "")

        for who in ("reader-a-rad", "admin"):
            user = self.clinic(who)
            up = user.json("upload", CT_SMALL, expect_code=1, timeout=60)["files"][0]
            print(f"  {who} upload: {up.get('code')}: {up.get('error')}")
            self.assertFalse(up["ok"])
            self.assertEqual(up["code"], "PERMISSION_DENIED")
            proc = user.run("--json", "exams", timeout=60)
            print(f"  {who} exams: exit {proc.returncode}: {proc.stderr.strip()}")
            self.assertNotEqual(proc.returncode, 0)
            self.assertNotIn(exam_id, proc.stdout)
            with self.channel(who) as channel:
                with self.assertRaises(grpc.RpcError) as err:
                    harness.raw_stub(channel, "/rdg.v1.ExamService/ListExams")(b"", timeout=30)
                self.assertEqual(err.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.gateway.query("SELECT exam_id FROM exams"), [(exam_id,)])
        self.assertEqual(len(self.gateway.blob_files()), 1)

    # 7 ------------------------------------------------------------------------------------------
    def test_refused_connections(self):
        rogue = harness.make_pki("rogue")
        impostor = self.clinic("clinic-a1", pki=rogue)  # trusts the real CA, presents a rogue cert
        # Refused at the handshake: said at once and not retried as a network failure.
        started = time.monotonic()
        out = impostor.json("upload", CT_SMALL, CT_SMALL, expect_code=2, timeout=120)
        elapsed = time.monotonic() - started
        print(f"\n  rogue clinic-a1: exit 2 in {elapsed:.1f} s: "
              f"{[(f.get('code'), f.get('error'), f.get('attempts')) for f in out['files']]}")
        for f in out["files"]:
            self.assertFalse(f["ok"])
            self.assertEqual(f["code"], "UNAUTHENTICATED")
            self.assertIn("refused this certificate at the TLS handshake", f["error"])
            self.assertLessEqual(f["attempts"], 1)
        text = impostor.run("upload", CT_SMALL, timeout=120)
        self.assertEqual(text.returncode, 2, text.stdout + text.stderr)
        self.assertIn("refused this certificate", text.stdout)
        self.assert_nothing_stored()

        # The gateway's own certificate not from the CA the clinic trusts: said so, too.
        wrong_ca = self.clinic("clinic-a1", ca=os.path.join(rogue, "ca.pem"))
        out = wrong_ca.json("upload", CT_SMALL, expect_code=2, timeout=120)
        print(f"  clinic trusting another CA: {out['files'][0].get('error')}")
        self.assertEqual(out["files"][0]["code"], "UNAUTHENTICATED")
        self.assertIn("gateway's own certificate is not trusted", out["files"][0]["error"])

        ca = read_bytes(os.path.join(self.pki, "ca.pem"))
        with grpc.secure_channel(self.gateway.address,
                                 grpc.ssl_channel_credentials(root_certificates=ca)) as channel:
            with self.assertRaises(grpc.RpcError) as err:
                harness.raw_stub(channel, "/rdg.v1.ExamService/ListExams")(b"", timeout=10)
        print(f"  no client certificate: {err.exception.code()}: {err.exception.details()}")
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assert_nothing_stored()
        self.assertEqual(self.exams(self.clinic("clinic-a1")), [])  # still serving real clinics

    # 8 ------------------------------------------------------------------------------------------
    def test_sigkill_during_uploads(self):
        src = self.tmp("in")
        template = pydicom.dcmread(CT_SMALL)
        paths = []
        for study in range(4):
            study_uid = generate_uid()
            for series in range(2):
                series_uid = generate_uid()
                for i in range(50):
                    ds = copy.deepcopy(template)
                    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
                    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                    ds.InstanceNumber = i + 1
                    paths.append(write_dicom(ds, os.path.join(src, f"s{study}-{series}-{i:03}.dcm")))
        self.assertEqual(len(paths), 400)
        digests = {p: sha256_file(p) for p in paths}
        batches = [paths[i:i + 25] for i in range(0, len(paths), 25)]

        clinic = self.clinic("clinic-a1")
        state = {"completed": [], "running": None, "error": None}
        stop = threading.Event()
        procs = []

        def uploader():
            try:
                for number, batch in enumerate(batches):
                    if stop.is_set():
                        return
                    # Paced (~0.5 s a batch) so that the kill lands inside a batch.
                    proc = clinic.popen("--json", "upload", *batch, "--max-rate", "2")
                    procs.append(proc)
                    state["running"] = number
                    stdout, stderr = proc.communicate(timeout=120)
                    state["completed"].append((number, proc.returncode, stdout, stderr))
                    state["running"] = None
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                state["error"] = e

        def reap():
            stop.set()
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        self.addCleanup(reap)
        thread = threading.Thread(target=uploader, daemon=True)
        thread.start()

        def inside_a_batch():
            self.assert_gateway_alive()
            if state["error"] or not thread.is_alive():
                raise AssertionError(f"uploader stopped early: {state}")
            running, done = state["running"], len(state["completed"])
            if running is None or done < 3 or running != done:
                return False
            stored = self.gateway.query("SELECT COUNT(*) FROM objects")[0][0]
            return stored >= 25 * done + 3  # the running batch has started storing
        harness.wait_for(inside_a_batch, 60, interval=0.01, what="3 batches done and a 4th running")
        stop.set()
        killed_in = state["running"]
        self.assertEqual(self.gateway.kill(), -signal.SIGKILL)
        self.gateway.start()  # same data dir, same port: the running batch's retries reach it
        harness.wait_for(lambda: not thread.is_alive() or self.gateway.proc.poll() is not None,
                         120, interval=0.05, what="the in-flight batch to finish")
        self.assert_gateway_alive()
        thread.join(10)
        self.assertFalse(thread.is_alive(), "the in-flight batch never finished")
        self.assertIsNone(state["error"])

        acknowledged = {}
        for number, code, stdout, stderr in state["completed"]:
            self.assertIn(code, (0, 1, 2), f"batch {number}: {stdout}{stderr}")
            for f in json.loads(stdout)["files"]:
                if f["ok"]:
                    acknowledged[f["path"]] = f
                elif number != killed_in:
                    self.fail(f"batch {number} (before the kill) rejected {f}")
        print(f"\n  killed during batch {killed_in}; {len(acknowledged)} files acknowledged; "
              f"(batch, exit) {[(n, c) for n, c, _, _ in state['completed']]}")
        for number, code, stdout, _ in state["completed"]:
            failed = collections.Counter(f"{f['code']} after {f['attempts']} attempts"
                                         for f in json.loads(stdout)["files"] if not f["ok"])
            # The in-flight batch rides out the crash: its retries reconnect to the restarted
            # gateway (a client that gave up on a gateway back within 0.1 s was a bug).
            self.assertFalse(failed, f"batch {number} (in flight at the kill): not stored {dict(failed)}")
        self.assertGreaterEqual(len(acknowledged), 100)

        # Every acknowledged upload survived, byte for byte.
        downloaded = self.download_all(clinic, self.tmp("out-after-kill"))
        for path, f in acknowledged.items():
            self.assertIn(f["sop_instance_uid"], downloaded, path)
            exam_id, data = downloaded[f["sop_instance_uid"]]
            self.assertEqual(exam_id, f["exam_id"])
            self.assertEqual(hashlib.sha256(data).hexdigest(), digests[path], path)

        # Nothing half-written is visible: blobs are named by their content ...
        blobs = self.gateway.blob_files()
        for blob in blobs:
            name = os.path.basename(blob)
            self.assertEqual(sha256_file(blob), name, f"blob {blob} does not match its name")
            self.assertEqual(os.path.basename(os.path.dirname(blob)), name[:2], blob)
        referenced = {r[0] for r in self.gateway.query("SELECT DISTINCT sha256 FROM objects")}
        self.assertLessEqual(referenced, {os.path.basename(b) for b in blobs})
        # ... and staged bytes only exist for a live upload session.
        sessions = {r[0] for r in self.gateway.query("SELECT session_id FROM upload_sessions")}
        for staged in self.gateway.upload_files():
            name = os.path.basename(staged)
            self.assertTrue(name.endswith(".part") and name[:-len(".part")] in sessions,
                            f"{staged} has no upload session")

        # The clinic just uploads everything again: all 400 end up stored, once.
        out = clinic.json("upload", *paths, timeout=180)
        self.assertTrue(all(f["ok"] for f in out["files"]))
        for f in out["files"]:
            if f["path"] in acknowledged:
                self.assertTrue(f["duplicate"], f)
                self.assertEqual(f["exam_id"], acknowledged[f["path"]]["exam_id"])
        exams = self.exams(clinic)
        self.assertEqual(len(exams), 4)
        self.assertEqual(sum(e["instance_count"] for e in exams), 400)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(400,)])

    # 10 -----------------------------------------------------------------------------------------
    def test_bad_config_exits_with_line(self):
        def run_gateway(config_text, name):
            path = os.path.join(self.tmp("configs"), name)
            with open(path, "w") as f:
                f.write(config_text)
            ready = os.path.join(self.workdir, f"{name}.ready")
            data = os.path.join(self.workdir, f"{name}-data")
            proc = subprocess.run([os.path.join(harness.BIN_DIR, "rdg-gateway"), "--config", path,
                                   "--listen", "127.0.0.1:0", "--data-dir", data,
                                   "--ready-file", ready],
                                  capture_output=True, text=True, timeout=30)
            print(f"\n  {name}: exit {proc.returncode}: {proc.stderr.strip()}")
            self.assertFalse(os.path.exists(ready), f"{name}: the gateway became ready")
            return path, proc

        with open(self.gateway.config_path) as f:
            good = f.read()
        unknown = "# RDG gateway\nlisten: \"127.0.0.1:0\"\nmax_upload_rate_mbps: 5\n" + good
        path, proc = run_gateway(unknown, "unknown-field.textproto")
        self.assertEqual(proc.returncode, 2)
        self.assertIn(f"{path}:3:", proc.stderr)
        self.assertIn("max_upload_rate_mbps", proc.stderr)

        queue = ('queues {\n  name: "county-c/imaging"\n  institution: "county-c"\n'
                 '  department: "imaging"\n}\n')
        text = good + "\n" + queue
        first = text.count("\n", 0, text.index(queue)) + 1  # line of "queues {"
        path, proc = run_gateway(text, "unknown-institution.textproto")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("county-c", proc.stderr)
        self.assertTrue(any(f"{path}:{line}:" in proc.stderr for line in (first, first + 2)),
                        f"expected {path}:{first}: (the queue) or :{first + 2}: (its institution)")


class GracefulShutdownTest(IngestTestCase):
    extra_config = "shutdown_grace_seconds: 1\n"

    # 9 ------------------------------------------------------------------------------------------
    def test_sigterm_keeps_upload_resumable(self):
        gateway = self.gateway  # started with shutdown_grace_seconds: 1
        big = make_big_dicom(self.tmp("in"))
        size = os.path.getsize(big)
        clinic = self.clinic("clinic-a1")
        proc = self.background(clinic, "--json", "upload", big, "--max-rate", "10")
        self.wait_part_file(4 * MB, proc)

        started = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)
        code = gateway.proc.wait(30)
        took = time.monotonic() - started
        gateway.proc = None
        print(f"\n  SIGTERM with shutdown_grace_seconds 1: exit {code} after {took:.2f}s")
        self.assertEqual(code, 0)
        self.assertLess(took, 5.0)
        proc.kill()  # the client is retrying against the stopped gateway
        proc.communicate(timeout=30)
        self.assertEqual(gateway.query("SELECT COUNT(*) FROM objects"), [(0,)])
        rows = gateway.query("SELECT session_id, size FROM upload_sessions")
        self.assertEqual(len(rows), 1, "the interrupted upload session was not kept")
        part = os.path.join(gateway.data_dir, "uploads", rows[0][0] + ".part")
        kept = os.path.getsize(part)
        self.assertGreater(kept, 0)

        gateway.start()
        out = clinic.json("upload", big, timeout=120)
        f = out["files"][0]
        print(f"  size {size}, part file {kept}, resumed_from {f['resumed_from']}, "
              f"bytes_sent {f['bytes_sent']}")
        self.assertTrue(f["ok"], f)
        self.assertGreater(f["resumed_from"], 0)
        self.assertEqual(f["bytes_sent"], size - f["resumed_from"])
        got = self.download(clinic, f["exam_id"], self.tmp("out"))
        self.assertEqual(hashlib.sha256(got[f["sop_instance_uid"]]).hexdigest(), sha256_file(big))


if __name__ == "__main__":
    unittest.main()
