"""Patient identity with the real binaries, as clinics and readers of two counties would meet it:
placeholder and wrong national IDs, one ID given to two people, local ID "0" for two people —
never linked as priors, each listed by `rdg-admin identity-conflicts`; a valid ID with agreeing
demographics still links across counties; a second patient under the same Study Instance UID
refused; HL7 orders of two patients never merged (AE for a message whose patient disagrees with
its order); priors only for the claim holder, or by breaking the glass with a reason that the
audit log and the dashboard show."""
import json
import os
import urllib.request

import pydicom
from pydicom.uid import generate_uid

import harness
import lab_corpus

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
# Born 1970-01-01, a man (odd sequence digit), valid ISO 7064 MOD 11-2 check digit.
MAN_1970 = "110101197001011238"
PLACEHOLDER = "000000000000000000"
POTASSIUM = [("NM", "2823-3^Potassium^LN", None, "mmol/L", "3.5-5.3", "")]


class Admin(harness.Reader):
    program = "rdg-admin"


def panel(value):
    return [(t, c, value, u, r, f) for (t, c, _, u, r, f) in POTASSIUM]


class IdentityTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.a1, self.b1 = self.clinic("clinic-a1"), self.clinic("clinic-b1")
        self.rad_a, self.rad_b = self.reader("reader-a-rad"), self.reader("reader-b-rad")
        self.lab_a = self.reader("reader-a-lab")
        self.admin = Admin(self.gateway, "admin")

    def ct(self, patient_id, name, sex="", birth="", other_ids=None, study=None):
        ds = pydicom.dcmread(CT_SMALL)
        ds.StudyInstanceUID = study or generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names in characters too
        ds.PatientID, ds.PatientName, ds.PatientSex = patient_id, name, sex
        ds.PatientBirthDate = birth
        if other_ids is not None:
            ds.OtherPatientIDs = other_ids
        return harness.write_dicom(ds, os.path.join(self.workdir, ds.SOPInstanceUID + ".dcm"))

    def upload(self, clinic, path, expect_code=0):
        return clinic.json("upload", path, expect_code=expect_code)

    def exam_of(self, clinic, path):
        return self.upload(clinic, path)["files"][0]["exam_id"]

    def lab(self, clinic, name, data, expect_code=0):
        path = os.path.join(self.workdir, name + ".hl7")
        with open(path, "wb") as f:
            f.write(data)
        return clinic.json("upload", path, expect_code=expect_code)

    def priors(self, reader, exam):
        reader.run("claim", exam, check=True)
        return reader.json("priors", exam)

    def conflicts(self):
        return self.admin.json("identity-conflicts").get("conflicts", [])

    # --- never linked ----------------------------------------------------------------------

    def test_placeholder_ids_link_no_one_across_counties(self):
        li = self.lab(self.a1, "li", lab_corpus.message("M-LI", panel("6.8"), patient="A-1",
                                                        name="LI^SI", national_id=PLACEHOLDER))
        wu = self.lab(self.b1, "wu", lab_corpus.message("M-WU", panel("4.1"), patient="B-1",
                                                        name="WU^SHI", national_id=PLACEHOLDER))
        wu_exam = wu["files"][0]["exam_id"]
        view = self.priors(self.rad_b, wu_exam)
        self.assertEqual(view.get("priors", []), [])
        values = [r["value"] for r in view["lab_results"]]
        self.assertEqual(values, ["4.1"], "LI^SI's 6.8 is never WU^SHI's history")
        listed = [(c["kind"], c["exam_id"], c["detail"]) for c in self.conflicts()]
        refused = "the national ID in PID-3 (NNCHN): it is a placeholder (one digit repeated)"
        self.assertCountEqual(listed, [
            ("NATIONAL_ID_REFUSED", li["files"][0]["exam_id"], refused),
            ("NATIONAL_ID_REFUSED", wu_exam, refused)])
        table = self.admin.run("identity-conflicts", check=True).stdout
        self.assertIn("Songling Township Health Centre", table)  # names, not only ids
        self.assertNotIn("WU", table)  # never patient data

    def test_one_id_for_two_people_and_local_id_zero_are_not_linked(self):
        # QIAN^QI F 2001 with a man's ID born 1970: the ID does not fit her — refused.
        qian = self.exam_of(self.a1, self.ct("A-2", "QIAN^QI", "F", "20010101", MAN_1970))
        # Two men born 1970-01-01 given the same ID, at two counties: names disagree.
        zhang = self.exam_of(self.a1, self.ct("A-3", "ZHANG^SAN", "M", "19700101", MAN_1970))
        li = self.exam_of(self.b1, self.ct("B-3", "LI^SI", "M", "19700101", MAN_1970))
        # Local patient ID "0" for two people at one clinic.
        zhao = self.exam_of(self.a1, self.ct("0", "ZHAO^LIU"))
        sun = self.exam_of(self.a1, self.ct("0", "SUN^BA"))
        for reader, exam in ((self.rad_a, qian), (self.rad_a, zhang), (self.rad_b, li),
                             (self.rad_a, zhao), (self.rad_a, sun)):
            self.assertEqual(self.priors(reader, exam).get("priors", []), [], exam)
        listed = {(c["kind"], c["exam_id"], c.get("other_exam_id", ""), tuple(c.get("fields", [])))
                  for c in self.conflicts()}
        # "0" is a placeholder: it links nothing; each exam carrying it is listed.
        self.assertEqual(listed, {
            ("NATIONAL_ID_REFUSED", qian, "", ("national ID",)),
            ("DEMOGRAPHICS_DISAGREE", min(zhang, li), max(zhang, li), ("name",)),
            ("PLACEHOLDER_PATIENT_ID", zhao, "", ("patient ID",)),
            ("PLACEHOLDER_PATIENT_ID", sun, "", ("patient ID",))})

    def test_a_bad_check_digit_links_no_one(self):
        bad = MAN_1970[:-1] + "9"  # the last character is not the check digit
        first = self.exam_of(self.a1, self.ct("A-4", "ZHANG^SAN", "M", "19700101", bad))
        other = self.exam_of(self.b1, self.ct("B-4", "ZHANG^SAN", "M", "19700101", bad))
        self.assertEqual(self.priors(self.rad_b, other).get("priors", []), [])
        listed = sorted((c["kind"], c["exam_id"], c["detail"]) for c in self.conflicts())
        reason = "the national ID in (0010,1000): the check digit is wrong"
        self.assertEqual(listed, sorted([("NATIONAL_ID_REFUSED", first, reason),
                                         ("NATIONAL_ID_REFUSED", other, reason)]))

    def test_a_valid_id_with_agreeing_demographics_links_across_counties(self):
        here = self.exam_of(self.a1, self.ct("A-9", "ZHANG^SAN=张三", "M", "19700101", MAN_1970))
        there = self.exam_of(self.b1, self.ct("B-9", "张三", "M", "19700101", MAN_1970))
        view = self.priors(self.rad_b, there)
        self.assertEqual([(p["exam_id"], p["origin_institution"]) for p in view["priors"]],
                         [(here, "clinic-a1")])
        self.assertEqual(self.conflicts(), [])

    # --- one exam, one patient -------------------------------------------------------------

    def test_a_second_patient_under_the_same_study_is_refused(self):
        study = generate_uid()
        first = self.upload(self.a1, self.ct("PAT-AAA", "ALPHA^ONE", study=study))
        exam = first["files"][0]["exam_id"]
        proc = self.a1.run("upload", self.ct("PAT-BBB", "BETA^TWO", study=study))
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(f"Study Instance UID {study} belongs to another patient", proc.stdout + proc.stderr)
        exams = self.a1.json("exams")["exams"]
        self.assertEqual([(e["exam_id"], e["instance_count"]) for e in exams], [(exam, 1)])
        self.assertEqual([(c["kind"], c["exam_id"], c["fields"]) for c in self.conflicts()],
                         [("STUDY_OF_ANOTHER_PATIENT", exam, ["patient ID", "name"])])

    def test_lab_orders_of_two_patients_are_never_merged(self):
        msg = lab_corpus.message
        a = self.lab(self.a1, "a", msg("O1", panel("6.8"), patient="111", name="LI^SI",
                                       national_id="", filler="ORD#1"))
        b = self.lab(self.a1, "b", msg("O2", panel("4.1"), patient="222", name="WU^SHI",
                                       national_id="", filler="ORD 1"))
        c = self.lab(self.a1, "c", msg("O3", panel("6.9"), patient="111", name="LI^SI",
                                       national_id="", filler="FIL1"))
        d = self.lab(self.a1, "d", msg("O4", panel("4.2"), patient="222", name="WU^SHI",
                                       national_id="", filler="FIL1"))
        exams = [r["files"][0]["exam_id"] for r in (a, b, c, d)]
        self.assertEqual(len(set(exams)), 4)
        for r in (a, b, c, d):
            self.assertEqual(r["files"][0]["hl7_ack_code"], "AA")
        # The same order and patient ID with another person's name: AE, nothing merged.
        e = self.lab(self.a1, "e", msg("O5", panel("7.5"), patient="111", name="QIAN^QI",
                                       national_id="", filler="FIL1"), expect_code=1)
        refused = e["files"][0]
        self.assertEqual((refused["code"], refused["hl7_ack_code"]), ("ALREADY_EXISTS", "AE"))
        self.assertIn("\rERR|", refused["hl7_ack"])
        self.assertIn("order FIL1 belongs to another patient (name differ)",
                      refused["hl7_ack_reason"])
        self.lab_a.run("claim", exams[2], check=True)
        view = self.lab_a.json("priors", exams[2])
        self.assertEqual(sorted(r["value"] for r in view["lab_results"]), ["6.8", "6.9"])
        kinds = sorted((c["kind"], c.get("detail", "")) for c in self.conflicts())
        self.assertEqual(kinds, [("ORDER_OF_ANOTHER_PATIENT", ""),
                                 ("ORDER_OF_ANOTHER_PATIENT", "HL7 message O5 refused")])

    # --- access in the context of work -----------------------------------------------------

    def test_priors_need_the_claim_or_a_broken_glass_with_a_reason(self):
        earlier = self.exam_of(self.a1, self.ct("A-5", "ZHANG^SAN", "M", "19700101", MAN_1970))
        current = self.exam_of(self.a1, self.ct("A-5", "ZHANG^SAN", "M", "19700101", MAN_1970))
        refused = self.rad_a.run("priors", current)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("claim it first, or break the glass", refused.stderr)
        glass = self.rad_a.json("priors", current, "--break-glass", "急会诊 电话会诊 Dr Li")
        self.assertEqual([p["exam_id"] for p in glass["priors"]], [earlier])
        audit = self.admin.json("audit", "--exam", current)["entries"]
        broke = [e for e in audit if e["action"] == "break_glass"]
        self.assertEqual([(e["user"], e["detail"]) for e in broke],
                         [("reader-a-rad", "priors: 急会诊 电话会诊 Dr Li")])
        # The reports of an exam one does not work on: the same rule.
        refused = self.rad_a.run("reports", earlier)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("reports of exam", refused.stderr)
        self.rad_a.run("reports", earlier, "--break-glass", "复查对比", check=True)
        # The dashboard's data shows it to the administrators.
        request = urllib.request.Request(
            self.gateway.monitoring_url + "/dashboard/data.json",
            headers={"Authorization": "Bearer " + self.gateway.monitoring_token})
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response)
        # Who, when, which exam and what — the reason (free text) only in the audit log.
        self.assertEqual([(g["user"], g["exam_id"], g["what"]) for g in data["break_glass"]],
                         [("reader-a-rad", earlier, "reports"), ("reader-a-rad", current, "priors")])
        self.assertEqual(data["totals"]["break_glass"], 2)
        self.assertNotIn("急会诊", json.dumps(data, ensure_ascii=False))


if __name__ == "__main__":
    import unittest
    unittest.main()
