"""Character sets end to end: DICOM objects whose names are written in GB18030, GBK, ISO 2022
IR 58 with escapes, ISO_IR 100, ISO_IR 192 and undeclared GB18030 come back as the right UTF-8
through `rdg-clinic exams --json`, `rdg-reader worklist --json`, `priors` and the printed report
(report.pdf, read back with pdftotext); listings never fail;
downloads stay byte-identical; `--patient 张` finds the patient; tables line up by display
width; and an index written before the conversion (raw bytes in its text columns) is repaired
from the stored objects at the next start.

The objects are written byte by byte (hostile_corpus.element): pydicom writes ISO 2022 IR 58
without its escape sequences."""
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import unicodedata

import harness
from hostile_corpus import element

CT_CLASS = b"1.2.840.10008.5.1.4.1.1.2"

# (label, Specific Character Set or None, raw Patient's Name, the name in UTF-8, display name)
NAMES = [
    ("gb18030", b"GB18030", "张^三".encode("gb18030"), "张^三", "张三"),
    ("gbk", b"GBK", "李^四".encode("gbk"), "李^四", "李四"),
    ("ir58", b"\\ISO 2022 IR 58",
     b"Wang^Fang=\x1b$)A" + "王".encode("gb2312") + b"^\x1b$)A" + "芳".encode("gb2312") + b"=",
     "Wang^Fang=王^芳=", "王芳 (Wang Fang)"),
    ("latin1", b"ISO_IR 100", "Buc^Jérôme".encode("latin-1"), "Buc^Jérôme", "Buc Jérôme"),
    ("utf8", b"ISO_IR 192", "赵^六".encode("utf-8"), "赵^六", "赵六"),
    ("undeclared", None, "钱^七".encode("gb18030"), "钱^七", "钱七"),
    # GB18030 bytes that are also valid UTF-8 (D6A3 5E CEB0 reads "֣^ΰ"): the repair must not
    # take them for UTF-8.
    ("zheng", b"GB18030", "郑^伟".encode("gb18030"), "郑^伟", "郑伟"),
]


def ct_object(n, charset, name, patient_id, description=b"CT", study=None, birth=b"19810302",
              age=None):
    """A CT object (Part 10) with raw name bytes; its own study unless `study` is given."""
    sop = f"1.2.826.0.1.3680043.8.498.77.{n}"
    ds = b""
    if charset is not None:
        ds += element(0x0008, 0x0005, "CS", charset)
    ds += (element(0x0008, 0x0016, "UI", CT_CLASS) + element(0x0008, 0x0018, "UI", sop.encode()) +
           element(0x0008, 0x0020, "DA", b"20261129") + element(0x0008, 0x0060, "CS", b"CT") +
           element(0x0008, 0x1030, "LO", description) + element(0x0010, 0x0010, "PN", name) +
           element(0x0010, 0x0020, "LO", patient_id) + element(0x0010, 0x0030, "DA", birth) +
           element(0x0010, 0x0040, "CS", b"F") +
           (element(0x0010, 0x1010, "AS", age) if age is not None else b"") +
           element(0x0020, 0x000D, "UI", (study or f"1.2.826.0.1.3680043.8.498.78.{n}").encode()) +
           element(0x0020, 0x000E, "UI", f"1.2.826.0.1.3680043.8.498.79.{n}".encode()))
    meta = (element(0x0002, 0x0001, "OB", b"\0\1") + element(0x0002, 0x0002, "UI", CT_CLASS) +
            element(0x0002, 0x0003, "UI", sop.encode()) +
            element(0x0002, 0x0010, "UI", b"1.2.840.10008.1.2.1"))
    meta = element(0x0002, 0x0000, "UL", struct.pack("<I", len(meta))) + meta
    return b"\0" * 128 + b"DICM" + meta + ds


def display_width(text):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else
               0 if unicodedata.combining(c) else 1 for c in text)


class CharsetTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.inputs = tempfile.mkdtemp(prefix="rdg-charsets-")
        self.addCleanup(shutil.rmtree, self.inputs, True)
        self.clinic_a1 = self.clinic("clinic-a1")
        self.rad = self.reader("reader-a-rad")
        self.files = {}
        for n, (label, charset, raw, _, _) in enumerate(NAMES):
            path = os.path.join(self.inputs, f"{label}.dcm")
            with open(path, "wb") as f:
                f.write(ct_object(n, charset, raw, f"CS-{label}".encode()))
            self.files[label] = path
        out = self.clinic_a1.json("upload", *self.files.values(), timeout=120)
        self.exam_of = {}
        for f in out["files"]:
            self.assertTrue(f["ok"], f)
            label = os.path.basename(f["path"])[:-4]
            self.exam_of[label] = f["exam_id"]

    def test_names_arrive_as_utf8_everywhere(self):
        exams = {e["exam_id"]: e for e in self.clinic_a1.json("exams")["exams"]}
        items = {i["exam"]["exam_id"]: i["exam"] for i in self.rad.json("worklist")["items"]}
        for label, _, _, name, display in NAMES:
            with self.subTest(label):
                exam_id = self.exam_of[label]
                for where, exam in (("rdg-clinic exams", exams[exam_id]),
                                    ("rdg-reader worklist", items[exam_id])):
                    self.assertEqual(exam["patient"]["name"], name, where)
                    self.assertEqual(exam["patient"]["display_name"], display, where)
                    self.assertEqual(exam["patient"]["sex"], "F", where)
                    self.assertEqual(exam["patient"]["age"], "045Y", where)
                    self.assertEqual(exam["origin_institution_name"],
                                     "Shuangqiao Township Health Centre", where)

    def test_undeclared_bytes_are_flagged_on_the_object(self):
        def notes(label):
            got = self.clinic_a1.json("exam", self.exam_of[label])
            obj, = got["objects"]
            return obj.get("text_notes", "")
        self.assertIn("read as GB18030", notes("undeclared"))
        self.assertEqual(notes("gb18030"), "")
        self.assertIn("read as GB18030", self.gateway.log())  # how, never what:
        self.assertNotIn("钱", self.gateway.log())

    def test_downloads_stay_byte_identical(self):
        for label in ("gb18030", "ir58", "undeclared"):
            out = os.path.join(self.inputs, "out-" + label)
            proc = self.clinic_a1.run("--json", "download", self.exam_of[label], "--out", out)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            got, = os.listdir(out)
            self.assertEqual(harness.read_bytes(os.path.join(out, got)),
                             harness.read_bytes(self.files[label]), label)

    def test_search_by_chinese_name(self):
        def found(term):
            return sorted(i["exam"]["exam_id"] for i in
                          self.rad.json("worklist", "--patient", term).get("items", []))
        self.assertEqual(found("张"), [self.exam_of["gb18030"]])
        self.assertEqual(found("张三"), [self.exam_of["gb18030"]])  # as people write it
        self.assertEqual(found("王芳"), [self.exam_of["ir58"]])
        self.assertEqual(found("buc jérôme"), [self.exam_of["latin1"]])
        self.assertEqual(found("CS-utf8"), [self.exam_of["utf8"]])  # the patient ID
        self.assertEqual(found("孙"), [])
        # Priorities in any case.
        self.assertEqual(len(self.rad.json("worklist", "--priority", "routine")["items"]),
                         len(NAMES))

    def test_priors_show_the_patient(self):
        path = os.path.join(self.inputs, "second.dcm")
        with open(path, "wb") as f:
            f.write(ct_object(50, b"GB18030", "张^三".encode("gb18030"), b"CS-gb18030",
                              description="胸部 CT".encode("gb18030")))
        second = self.clinic_a1.json("upload", path)["files"][0]["exam_id"]
        self.assertEqual(self.rad.run("claim", second).returncode, 0)
        priors = self.rad.json("priors", second)["priors"]
        self.assertEqual([p["exam_id"] for p in priors], [self.exam_of["gb18030"]])
        self.assertEqual(priors[0]["patient"]["display_name"], "张三")
        items = {i["exam"]["exam_id"]: i["exam"] for i in self.rad.json("worklist")["items"]}
        self.assertEqual(items[second]["study_description"], "胸部 CT")

    def test_every_name_in_priors_and_on_the_printed_report(self):
        for n, (label, charset, raw, _, display) in enumerate(NAMES):
            with self.subTest(label):
                # A second exam of the same patient at the same clinic: the first is its prior.
                path = os.path.join(self.inputs, f"{label}-second.dcm")
                with open(path, "wb") as f:
                    f.write(ct_object(60 + n, charset, raw, f"CS-{label}".encode()))
                second = self.clinic_a1.json("upload", path)["files"][0]["exam_id"]
                self.assertEqual(self.rad.run("claim", second).returncode, 0)
                priors = self.rad.json("priors", second).get("priors", [])
                self.assertEqual([p["exam_id"] for p in priors], [self.exam_of[label]])
                self.assertEqual(priors[0]["patient"]["display_name"], display)
                # The report of the first exam, printed for the clinic.
                exam = self.exam_of[label]
                self.assertEqual(self.rad.run("claim", exam).returncode, 0)
                proc = self.rad.run("report", exam, "--final", "--impression", f"未见异常 {label}")
                self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
                out = os.path.join(self.inputs, f"report-{label}")
                self.assertTrue(self.clinic_a1.json("report", exam, "--out", out)["verified"])
                text = subprocess.run(["pdftotext", "-layout", os.path.join(out, "report.pdf"),
                                       "-"], capture_output=True, text=True, check=True).stdout
                self.assertIn(f"姓名 {display}", text)
                self.assertIn(f"未见异常 {label}", text)

    def test_age_as_the_modality_wrote_it(self):
        ages = {"age-only": (b"", b"067Y", "067Y"), "both": (b"19810302", b"044Y", "044Y"),
                "placeholder": (b"", b"000Y", ""), "malformed": (b"", b"67", ""),
                "birth-only": (b"19810302", None, "045Y")}
        for n, (label, (birth, age, expected)) in enumerate(ages.items()):
            with self.subTest(label):
                path = os.path.join(self.inputs, f"age-{label}.dcm")
                with open(path, "wb") as f:
                    f.write(ct_object(80 + n, b"GB18030", "孙^八".encode("gb18030"),
                                      f"AGE-{label}".encode(), birth=birth, age=age))
                exam = self.clinic_a1.json("upload", path)["files"][0]["exam_id"]
                shown = {e["exam_id"]: e for e in self.clinic_a1.json("exams")["exams"]}[exam]
                self.assertEqual(shown["patient"].get("age", ""), expected)

    def test_tables_align_by_display_width(self):
        proc = self.rad.run("worklist")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        header, rows = lines[0], lines[1:]
        self.assertEqual(len(rows), len(NAMES), proc.stdout)
        column = display_width(header[:header.index("SEX/AGE")])
        for row in rows:
            at = row.index("F 45Y")
            self.assertEqual(display_width(row[:at]), column, f"misaligned:\n{proc.stdout}")
        for _, _, _, _, display in NAMES:
            self.assertIn(display, proc.stdout)

    @harness.sqlite_only("repairs an index of SQLite schema 10")
    def test_old_index_is_repaired_and_listings_never_fail(self):
        """An index as the gateway wrote it before (schema version 10, raw bytes in its TEXT
        columns) is migrated and repaired from the stored objects at start; a row no object can
        repair is shown with U+FFFD."""
        self.gateway.stop()
        db = sqlite3.connect(os.path.join(self.gateway.data_dir, "index.sqlite"))
        with db:  # back to version 10, as the previous gateway left it
            db.execute("DROP TABLE pending_repairs")
            db.execute("ALTER TABLE objects DROP COLUMN text_notes")
            db.execute("ALTER TABLE exams DROP COLUMN patient_age")  # version 12
            db.execute("DROP INDEX audit_log_by_action")  # version 14
            db.execute("ALTER TABLE exams DROP COLUMN escalated_by")
            db.execute("ALTER TABLE exams DROP COLUMN escalation_reason")
            db.execute("DROP TABLE identity_conflicts")  # version 13
            db.execute("DROP INDEX exams_by_origin_accession")
            db.execute("ALTER TABLE exams DROP COLUMN patient_id_issuer")
            db.execute("ALTER TABLE exams DROP COLUMN national_id_issuer")
            db.execute("DROP TABLE outbound_jobs")  # version 17
            db.execute("DROP TABLE outbound_plan")
            db.execute("DROP INDEX exams_by_study")
            db.execute("DROP TABLE audit_export")  # version 16
            db.execute("DROP TABLE audit_checkpoints")  # version 15
            for column in ("outcome", "patient_id", "peer", "subject", "prev_hash", "hash"):
                db.execute(f"ALTER TABLE audit_log DROP COLUMN {column}")
            db.execute("DELETE FROM schema_migrations WHERE version >= 11")
            for label, _, raw, _, _ in NAMES:
                db.execute("UPDATE exams SET patient_name = CAST(? AS TEXT), "
                           "study_description = CAST(? AS TEXT) WHERE exam_id = ?",
                           (raw, raw, self.exam_of[label]))
        db.close()
        self.gateway.start()
        self.assertIn(f"index text made UTF-8: {len(NAMES)} exams read again", self.gateway.log())
        self.assertEqual(self.gateway.query("SELECT MAX(version) FROM schema_migrations"), [(18,)])
        # The audit records of the older release were linked into the chain by the migration.
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM audit_log WHERE hash IS NULL "
                                            "OR length(hash) != 32"), [(0,)])
        exams = {e["exam_id"]: e for e in self.clinic_a1.json("exams")["exams"]}
        for label, _, _, name, _ in NAMES:
            self.assertEqual(exams[self.exam_of[label]]["patient"]["name"], name, label)
            self.assertEqual(exams[self.exam_of[label]]["study_description"], "CT", label)

        # A row that stays broken (written after the repair ran): shown, never a failed listing.
        self.gateway.stop()
        db = sqlite3.connect(os.path.join(self.gateway.data_dir, "index.sqlite"))
        with db:
            db.execute("UPDATE exams SET study_description = CAST(? AS TEXT) WHERE exam_id = ?",
                       (b"\xff\xfe broken", self.exam_of["utf8"]))
        db.close()
        self.gateway.start()
        exams = {e["exam_id"]: e for e in self.clinic_a1.json("exams")["exams"]}
        self.assertEqual(len(exams), len(NAMES))
        self.assertEqual(exams[self.exam_of["utf8"]]["study_description"], "\ufffd\ufffd broken")
        items = self.rad.json("worklist")["items"]
        self.assertEqual(len(items), len(NAMES))


if __name__ == "__main__":
    import unittest
    unittest.main()
