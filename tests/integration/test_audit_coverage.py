"""What the audit log covers (issue 17): every access to an exam names the patient, the caller's
address and certificate subject, and its outcome — uploads, reads and refusals alike. Refused
calls (another county's exam, a clinic at the administrators' service) are written by the
gateway's refusal interceptor with the status they got; successful ones by the desks."""
import os

import pydicom
from pydicom.uid import generate_uid

import harness

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


class Admin(harness.Reader):
    program = "rdg-admin"


class AuditCoverageTest(harness.GatewayTestCase):

    def upload_ct(self, patient_id, issuer=None):
        ds = pydicom.dcmread(CT_SMALL)
        ds.PatientID = patient_id
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = os.path.join(self.workdir, ds.SOPInstanceUID + ".dcm")
        ds.save_as(path)
        self.last_upload = path
        return self.clinic().json("upload", path)["exams"][0]["exam_id"]

    def rows(self, action, **where):
        sql = ("SELECT institution, user, action, exam_id, detail, outcome, patient_id, peer, "
               "subject FROM audit_log WHERE action = ?")
        params = [action]
        for column, value in where.items():
            sql += f" AND {column} = ?"
            params.append(value)
        names = ("institution", "user", "action", "exam_id", "detail", "outcome", "patient_id",
                 "peer", "subject")
        return [dict(zip(names, row)) for row in self.gateway.query(sql + " ORDER BY seq", *params)]

    def wait_rows(self, action, **where):
        # Refusals are appended on the worker pool after the answer: poll for them.
        harness.wait_for(lambda: self.rows(action, **where), timeout=10,
                         what=f"an audit record {action} {where}")
        return self.rows(action, **where)

    def assert_caller(self, row, cn, ou, o):
        self.assertRegex(row["peer"], r"^ipv[46]:")
        self.assertIn(f"CN={cn}", row["subject"])
        self.assertIn(f"OU={ou}", row["subject"])
        self.assertIn(f"O={o}", row["subject"])

    def test_an_upload_names_the_patient_the_caller_and_the_object(self):
        exam = self.upload_ct("QS-000123", issuer="QSHOSP")
        [row] = self.rows("upload", exam_id=exam)
        self.assertEqual((row["institution"], row["user"], row["outcome"]),
                         ("clinic-a1", "clinic-a1", ""))
        self.assertTrue(row["patient_id"].startswith("QS-000123^^^QSHOSP"), row)
        self.assertRegex(row["detail"], r"^DICOM [0-9.]+, \d+ bytes$")
        self.assert_caller(row, "clinic-a1", "clinic", "clinic-a1")
        # The same object again adds nothing to the exam, and the log says so.
        path = self.last_upload
        self.assertEqual(self.clinic().json("upload", path)["exams"][0]["exam_id"], exam)
        again = self.rows("upload", exam_id=exam)
        self.assertEqual(len(again), 2)
        self.assertTrue(again[1]["detail"].endswith("(already stored)"), again[1])
        self.clinic().json("exam", exam)
        reads = self.rows("get_exam", exam_id=exam)
        self.assertEqual(len(reads), 1)
        self.assertTrue(reads[0]["patient_id"].startswith("QS-000123^^^QSHOSP"))

    def test_refused_accesses_are_audited_with_outcome_peer_and_subject(self):
        exam = self.upload_ct("QS-000456")
        # A clinic of another county asks for the exam; a reader of another county fetches it.
        other = self.clinic("clinic-b1")
        self.assertNotEqual(other.run("exam", exam).returncode, 0)
        self.assertNotEqual(self.reader("reader-b-rad").run("fetch", exam, "--out",
                                                            self.workdir).returncode, 0)
        # A clinic at the administrators' service.
        self.assertNotEqual(Admin(self.gateway, "clinic-a1").run("queues").returncode, 0)

        [foreign] = self.wait_rows("get_exam", institution="clinic-b1")
        self.assertEqual(foreign["exam_id"], exam)
        self.assertIn(foreign["outcome"], ("NOT_FOUND", "PERMISSION_DENIED"))
        self.assertTrue(foreign["patient_id"].startswith("QS-000456^^^"), foreign)
        self.assert_caller(foreign, "clinic-b1", "clinic", "clinic-b1")

        [fetch] = self.wait_rows("fetch_exam", institution="county-b")
        self.assertEqual((fetch["exam_id"], fetch["user"]), (exam, "reader-b-rad"))
        self.assertNotEqual(fetch["outcome"], "")
        self.assert_caller(fetch, "reader-b-rad", "reader", "county-b")

        [admin] = self.wait_rows("get_queues", institution="clinic-a1")
        self.assertEqual(admin["outcome"], "PERMISSION_DENIED")
        self.assert_caller(admin, "clinic-a1", "clinic", "clinic-a1")
        # None of them was written as a success.
        self.assertEqual(self.rows("fetch_exam", institution="county-b", outcome=""), [])

    def test_claims_report_reads_and_acknowledgements_are_audited(self):
        exam = self.upload_ct("QS-000789")
        rad = self.reader("reader-a-rad")
        for step in (("claim", exam), ("renew", exam), ("release", exam), ("claim", exam)):
            proc = rad.run(*step)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        proc = rad.run("report", exam, "--final", "--findings", "Lungs clear.", "--impression",
                       "Normal chest CT.")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(rad.run("reports", exam).returncode, 0)
        self.assertEqual(self.clinic().run("reports").returncode, 0)
        self.assertEqual(self.clinic().run("ack", exam).returncode, 0)

        for action in ("claim_exam", "renew_claim", "release_claim", "submit_report",
                       "read_reports"):
            rows = self.rows(action, exam_id=exam)
            self.assertTrue(rows, action)
            self.assertEqual(rows[0]["user"], "reader-a-rad")
            self.assertTrue(rows[0]["patient_id"].startswith("QS-000789^^^"), rows[0])
            self.assert_caller(rows[0], "reader-a-rad", "reader", "county-a")
        for action in ("receive_report", "acknowledge_report"):
            [row] = self.rows(action, exam_id=exam)
            self.assertEqual(row["institution"], "clinic-a1")
            self.assertTrue(row["patient_id"].startswith("QS-000789^^^"), row)
        # Everything above is one unbroken chain.
        proc = Admin(self.gateway, "admin").run("audit", "verify")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
