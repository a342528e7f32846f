"""ECG and lab results with the real binaries: pydicom's real 12-lead ECG ingested, routed to the
ECG centre, fetched with its rendered tracing (SVG structure and PNG size checked) and reported
by the SM2 reader; corrupted waveforms refused; the HL7 v2 lab corpus answered with the right ACK
and nothing stored for rejected messages; a critical potassium ahead of routine lab work and its
report delivered with an acknowledgement deadline; lab trends and previous ECGs across
institutions, audited."""
import json
import os
import shutil
import struct
import subprocess
import unittest
import xml.etree.ElementTree as ET

import pydicom
from pydicom.uid import generate_uid

import harness
import lab_corpus

ECG = os.path.join(harness.PYDICOM_FILES, "waveform_ecg.dcm")
CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
SVG_NS = {"s": "http://www.w3.org/2000/svg"}
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


class EcgLabTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.a1 = self.clinic("clinic-a1")
        self.ecg_reader = self.reader("reader-a-ecg-tls")
        self.lab = self.reader("reader-a-lab")
        self.ca = os.path.join(self.pki, "ca.pem")

    # --- helpers -------------------------------------------------------------------------------

    def count(self, sql, *params):
        return self.gateway.query(sql, *params)[0][0]

    def ecg_copy(self, national_id=None, **changes):
        """pydicom's ECG as an exam of its own (new UIDs), optionally changed."""
        ds = pydicom.dcmread(ECG)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        if national_id:
            ds.OtherPatientIDs = national_id
        for key, value in changes.items():
            setattr(ds.WaveformSequence[0], key, value)
        return harness.write_dicom(ds, os.path.join(self.workdir, ds.SOPInstanceUID + ".dcm"))

    def write(self, name, data):
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def upload_lab(self, name, data, expect_code=0, clinic=None):
        return (clinic or self.a1).json("upload", self.write(name + ".hl7", data),
                                        expect_code=expect_code)

    def sign_final(self, reader, exam, *sign, impression):
        proc = reader.run("report", exam, "--final", "--impression", impression, *sign)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def delivered(self, exam):
        lines = self.a1.run("--json", "reports").stdout.splitlines()
        mine = [json.loads(l) for l in lines if json.loads(l)["report"]["content"]["exam_id"] == exam]
        self.assertEqual(len(mine), 1, lines)
        return mine[0]

    def check_svg(self, path):
        root = ET.parse(path).getroot()
        leads = root.findall(".//s:g[@class='lead']", SVG_NS)
        self.assertEqual([g.get("id") for g in leads], [f"lead-{n}" for n in LEADS])
        for g in leads:
            self.assertIsNotNone(g.find("s:text[@class='lead-label']", SVG_NS), g.get("id"))
            trace = g.find("s:path[@class='trace']", SVG_NS)
            self.assertGreater(len(trace.get("d", "")), 100, g.get("id"))  # a real curve
        rhythm = root.findall(".//s:g[@class='rhythm']", SVG_NS)
        self.assertEqual([g.get("id") for g in rhythm], ["rhythm-II"])
        grid = root.find(".//s:g[@id='grid']", SVG_NS)
        self.assertGreater(len(grid.findall(".//*[@class='grid-minor']", SVG_NS)), 100)
        self.assertGreater(len(grid.findall(".//*[@class='grid-major']", SVG_NS)), 20)
        self.assertGreaterEqual(len(root.findall(".//s:path[@class='calibration']", SVG_NS)), 4)
        return root

    # --- ECG -----------------------------------------------------------------------------------

    def test_real_ecg_is_routed_fetched_rendered_and_reported_with_sm2(self):
        up = self.a1.json("upload", "--priority", "STAT", ECG)
        exam = up["exams"][0]["exam_id"]
        info = self.a1.json("exams")["exams"][0]
        self.assertEqual((info["exam_type"], info["queue"]), ("ECG", "county-a/ecg"))
        worklist = self.ecg_reader.json("worklist", "--modality", "ECG")["items"]
        self.assertEqual([i["exam"]["exam_id"] for i in worklist], [exam])
        self.assertEqual(self.ecg_reader.run("claim", exam).returncode, 0)
        out = os.path.join(self.workdir, "fetched")
        fetched = self.ecg_reader.json("fetch", exam, "--out", out)
        dcm = fetched["files"][0]["path"]
        self.assertEqual(harness.read_bytes(dcm), harness.read_bytes(ECG))
        rendered = fetched["rendered"]
        svg = next(p for p in rendered if p.endswith(".ecg.svg"))
        png = next(p for p in rendered if p.endswith(".ecg.png"))
        root = self.check_svg(svg)
        width_mm = float(root.get("width").removesuffix("mm"))
        height_mm = float(root.get("height").removesuffix("mm"))
        self.assertEqual(png_size(png), (round(width_mm * 8), round(height_mm * 8)))
        shutil.copy(png, os.path.join(self.workdir, "ecg_tracing.png"))  # kept on failure

        # The same picture from the local file, without the gateway.
        local = os.path.join(self.workdir, "local.svg")
        proc = self.ecg_reader.run("render", ECG, "--out", local)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(harness.read_bytes(local), harness.read_bytes(svg))
        proc = self.ecg_reader.run("render", CT_SMALL, "--out", local)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not an ECG", proc.stderr)

        self.sign_final(self.ecg_reader, exam, "--sign-key", f"{self.pki}/reader-a-ecg.key",
                        "--sign-cert", f"{self.pki}/reader-a-ecg.pem",
                        impression="Sinus rhythm, 68/min. No acute ST changes.")
        self.assertEqual(self.delivered(exam)["report"]["signature"]["format"], "SM2_SM3_RAW")
        saved = os.path.join(self.workdir, "report")
        self.assertTrue(self.a1.json("report", exam, "--out", saved)["verified"])
        self.assertEqual(openssl("verify", "-CAfile", self.ca, f"{saved}/signer.pem").returncode, 0)
        with open(f"{saved}/signer.pub", "w") as f:
            f.write(openssl("x509", "-in", f"{saved}/signer.pem", "-pubkey", "-noout").stdout)
        verify = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt",
                         "distid:1234567812345678", "-pubin", "-inkey", f"{saved}/signer.pub",
                         "-in", f"{saved}/report.txt", "-sigfile", f"{saved}/report.sm2.sig")
        self.assertEqual(verify.returncode, 0, verify.stderr)

    def test_ecg_printout_names_the_patient_in_chinese(self):
        ds = pydicom.dcmread(ECG)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SpecificCharacterSet = "GB18030"
        ds.PatientName, ds.PatientID = "王^芳", "HB-0001"
        ds.InstitutionName = "江夏区第一人民医院"
        path = harness.write_dicom(ds, os.path.join(self.workdir, "wang_fang.dcm"))
        exam = self.a1.json("upload", path)["exams"][0]["exam_id"]
        self.assertEqual(self.ecg_reader.run("claim", exam).returncode, 0)
        fetched = self.ecg_reader.json("fetch", exam, "--out", os.path.join(self.workdir, "f"))
        svg = next(p for p in fetched["rendered"] if p.endswith(".ecg.svg"))
        root = self.check_svg(svg)

        def line(name):
            return "".join(root.find(f".//s:text[@id='{name}']", SVG_NS).itertext())

        self.assertEqual(line("patient"), "王芳   ID HB-0001  女  42岁  出生 1971-01-23")
        self.assertIn("2013-01-25 10:59:19  江夏区第一人民医院", line("recording"))
        self.assertIn("Mortara Instrument, Inc. el250", line("recording"))
        self.assertIn("HR 61 bpm", line("measurements"))
        self.assertIn("QT/QTc 368/370 ms", line("measurements"))
        # Another patient's tracing of the same waveform is not the same printout.
        local = os.path.join(self.workdir, "sample.svg")
        self.assertEqual(self.ecg_reader.run("render", ECG, "--out", local).returncode, 0)
        self.assertNotEqual(harness.read_bytes(local), harness.read_bytes(svg))

    def test_corrupted_waveforms_are_rejected_with_a_reason(self):
        ds = pydicom.dcmread(ECG)
        cases = {
            "short data": (self.ecg_copy(WaveformData=ds.WaveformSequence[0].WaveformData[:-2]),
                           "Waveform Data"),
            "zero channels": (self.ecg_copy(NumberOfWaveformChannels=0),
                              "Number of Waveform Channels"),
        }
        for name, (path, reason) in cases.items():
            with self.subTest(name):
                result = self.a1.json("upload", path, expect_code=1)
                error = result["files"][0]["error"]
                self.assertEqual(result["files"][0]["code"], "INVALID_ARGUMENT", error)
                self.assertIn(reason, error)
        self.assertEqual(self.count("SELECT COUNT(*) FROM objects"), 0)
        self.assertEqual(self.count("SELECT COUNT(*) FROM exams"), 0)
        self.assertEqual(self.gateway.blob_files(), [])

    def test_previous_ecgs_of_the_patient_from_any_institution(self):
        nid = "110101197101230024"  # pydicom's ECG patient: a woman born 1971-01-23
        first = self.a1.json("upload", self.ecg_copy(nid))["exams"][0]["exam_id"]
        a2 = self.clinic("clinic-a2")
        current = a2.json("upload", self.ecg_copy(nid))["exams"][0]["exam_id"]
        ct = pydicom.dcmread(CT_SMALL)
        ct.StudyInstanceUID, ct.OtherPatientIDs = generate_uid(), nid
        ct.SOPInstanceUID = ct.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        self.a1.json("upload", harness.write_dicom(ct, os.path.join(self.workdir, "ct.dcm")))
        self.assertEqual(self.ecg_reader.run("claim", current).returncode, 0)
        priors = self.ecg_reader.json("priors", current).get("priors", [])
        self.assertEqual([(p["exam_id"], p["origin_institution"]) for p in priors],
                         [(first, "clinic-a1")])
        self.assertEqual(self.count("SELECT COUNT(*) FROM audit_log WHERE action = 'view_prior' "
                                    "AND exam_id = ? AND user = 'reader-a-ecg'", first), 1)

    # --- lab -----------------------------------------------------------------------------------

    def test_lab_corpus_gets_the_right_ack_and_rejected_messages_leave_nothing(self):
        accepted = 0
        for name, data, code in lab_corpus.corpus():
            with self.subTest(name):
                before = self.count("SELECT COUNT(*) FROM objects")
                result = self.upload_lab(name, data, expect_code=0 if code == "AA" else 1)
                f = result["files"][0]
                self.assertEqual(f["kind"], "HL7V2_LAB")
                self.assertEqual(f["hl7_ack_code"], code, f)
                ack = f["hl7_ack"]
                self.assertTrue(ack.startswith("MSH|"), ack)
                self.assertIn(f"\rMSA|{code}|", ack)
                if code == "AA":
                    accepted += 1
                    self.assertNotIn("\rERR|", ack)
                    self.assertEqual(self.count("SELECT COUNT(*) FROM objects"), before + 1)
                else:
                    self.assertIn("\rERR|", ack)
                    self.assertTrue(f["hl7_ack_reason"])
                    self.assertEqual(self.count("SELECT COUNT(*) FROM objects"), before)
        self.assertEqual(self.count("SELECT COUNT(*) FROM objects"), accepted)
        self.assertEqual(len(self.gateway.blob_files()), accepted)
        self.assertEqual(self.gateway.upload_files(), [])

        name = self.count("SELECT patient_name FROM exams e JOIN objects o USING (exam_id) "
                          "WHERE o.sop_instance_uid LIKE 'hl7-LIS-MSG-GB-%'")
        self.assertEqual(name, lab_corpus.GB18030_NAME)
        value = self.count("SELECT value FROM lab_results WHERE code = '8251-1'")
        self.assertEqual(value, "A|B^C&D~E\\")
        orders = self.count("SELECT COUNT(DISTINCT order_service) FROM lab_results r JOIN "
                            "objects o USING (exam_id) WHERE o.sop_instance_uid LIKE "
                            "'hl7-LIS-MSG-MULTI-%'")
        self.assertEqual(orders, 3)

    def test_stored_message_is_byte_identical_and_resending_is_idempotent(self):
        data = lab_corpus.message("MSG-SAME", lab_corpus.NORMAL_PANEL, charset="GB 18030-2000",
                                  name=lab_corpus.GB18030_NAME)
        exam = self.upload_lab("same", data)["files"][0]["exam_id"]
        again = self.upload_lab("same", data)["files"][0]
        self.assertEqual((again["hl7_ack_code"], again["duplicate"]), ("AA", True))
        changed = self.upload_lab("changed", data.replace(b"4.1", b"4.2"), expect_code=1)["files"][0]
        self.assertEqual((changed["code"], changed["hl7_ack_code"]), ("ALREADY_EXISTS", "AE"))
        out = os.path.join(self.workdir, "download")
        files = self.a1.json("download", exam, "--out", out)["files"]
        self.assertEqual(len(files), 1)
        self.assertTrue(files[0]["path"].endswith(".hl7"))
        self.assertEqual(harness.read_bytes(files[0]["path"]), data)

    def test_mllp_file_with_several_messages_gets_an_ack_per_message(self):
        stream = lab_corpus.mllp(lab_corpus.message("MSG-M1", lab_corpus.NORMAL_PANEL),
                                 lab_corpus.message("MSG-M2", lab_corpus.NORMAL_PANEL)[:-60],
                                 lab_corpus.message("MSG-M3", lab_corpus.CRITICAL_POTASSIUM))
        path = self.write("batch.hl7", stream)
        proc = self.a1.run("upload", path)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)  # one message rejected
        lines = [l for l in proc.stdout.splitlines() if l.startswith("lab message ")]
        self.assertEqual(len(lines), 3, proc.stdout)
        self.assertIn(f"{path}#1: ACK AA", lines[0])
        self.assertIn(f"{path}#2: ACK AE", lines[1])
        self.assertIn(f"{path}#3: ACK AA", lines[2])

    def test_critical_value_jumps_the_queue_and_its_report_must_be_acknowledged(self):
        routine = [self.upload_lab(f"r{i}", lab_corpus.message(f"MSG-R{i}", lab_corpus.NORMAL_PANEL,
                                                              patient=f"PAT-R{i}"))
                   for i in range(3)]
        critical = self.upload_lab("crit", lab_corpus.message("MSG-K", lab_corpus.CRITICAL_POTASSIUM))
        exam = critical["files"][0]["exam_id"]
        items = self.lab.json("worklist")["items"]
        self.assertEqual(len(items), 4)
        self.assertEqual(items[0]["exam"]["exam_id"], exam)
        self.assertEqual(items[0]["exam"]["priority"], "STAT")
        self.assertTrue(items[0]["exam"]["critical"])
        self.assertFalse(any(i["exam"].get("critical") for i in items[1:]))
        self.assertIn(routine[0]["files"][0]["exam_id"], [i["exam"]["exam_id"] for i in items[1:]])
        # By threshold alone: a potassium of 2.5 without the lab's LL flag is critical too.
        low = [("NM", "2823-3^Potassium^LN", "2.5", "mmol/L", "3.5-5.3", "L")]
        by_rule = self.upload_lab("low", lab_corpus.message("MSG-LOW", low, patient="PAT-LOW"))
        self.assertTrue(self.a1.json("exams")["exams"][0]["critical"], by_rule)

        self.assertEqual(self.lab.run("claim", exam).returncode, 0)
        self.sign_final(self.lab, exam, impression="Hyperkalaemia 6.8 mmol/L: critical value, "
                        "phoned to the clinic; repeat sample, ECG.")
        d = self.delivered(exam)
        self.assertTrue(d["urgent"])
        self.assertIn("acknowledge_by", d)
        saved = os.path.join(self.workdir, "report")
        self.assertTrue(self.a1.json("report", exam, "--out", saved)["verified"])
        verify = openssl("cms", "-verify", "-binary", "-inform", "DER", "-in",
                         f"{saved}/report.p7s", "-content", f"{saved}/report.txt",
                         "-CAfile", self.ca, "-purpose", "any", "-out", os.devnull)
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertEqual(self.a1.run("ack", exam).returncode, 0)

    def test_lab_trend_across_institutions_is_audited(self):
        panel = lambda k: [("NM", "2823-3^Potassium^LN", k, "mmol/L", "3.5-5.3", "N"),
                           ("NM", "2951-2^Sodium^LN", "140", "mmol/L", "137-147", "N")]
        first = self.upload_lab("k1", lab_corpus.message("MSG-T1", panel("4.0"), patient="A-1",
                                                         observed="20261101080000"))
        a2 = self.clinic("clinic-a2")
        self.upload_lab("k2", lab_corpus.message("MSG-T2", panel("4.6"), patient="B-9",
                                                 observed="20261110080000"), clinic=a2)
        other = self.upload_lab("x", lab_corpus.message("MSG-X", panel("5.0"), patient="C-3",
                                                        national_id="", observed="20261111080000"))
        current = self.upload_lab("k3", lab_corpus.message("MSG-T3", panel("5.1"), patient="A-1",
                                                           observed="20261120080000"))
        exam = current["files"][0]["exam_id"]
        self.assertEqual(self.lab.run("claim", exam).returncode, 0)
        view = self.lab.json("priors", exam)
        self.assertEqual(len(view["priors"]), 2)
        potassium = [(r["observed_at"], r["value"], r["origin_institution"])
                     for r in view["lab_results"] if r["code"] == "2823-3"]
        self.assertEqual(potassium, [("20261101080000", "4.0", "clinic-a1"),
                                     ("20261110080000", "4.6", "clinic-a2"),
                                     ("20261120080000", "5.1", "clinic-a1")])
        ids = {r["exam_id"] for r in view["lab_results"]}
        self.assertNotIn(other["files"][0]["exam_id"], ids)  # another patient's values: never
        self.assertEqual(self.count("SELECT COUNT(*) FROM audit_log WHERE action = 'view_prior' "
                                    "AND exam_id = ?", first["files"][0]["exam_id"]), 1)
        table = self.lab.run("priors", exam).stdout
        self.assertIn("lab results", table)
        self.assertIn("clinic-a2", table)


if __name__ == "__main__":
    unittest.main()
