"""AdminService and rdg-admin against the real gateway: queue figures (depth, being read, oldest
waiting, overdue) agree with what clinics and readers did; turnaround figures and SLA breaches
follow the gateway's injected clock (a STAT exam left unclaimed is recorded as breached and
escalated); the audit log is readable by administrators only, and reading it is itself audited;
every admin RPC is PERMISSION_DENIED to clinics and readers."""
import importlib
import json
import os
import subprocess
import unittest

import grpc
import pydicom
from pydicom.uid import generate_uid

import harness

STUBS = harness.python_stubs()
admin_pb2 = importlib.import_module("rdg.v1.admin_pb2")
common_pb2 = importlib.import_module("rdg.v1.common_pb2")
admin_pb2_grpc = importlib.import_module("rdg.v1.admin_pb2_grpc")


class Admin(harness.Reader):
    program = "rdg-admin"


class AdminTest(harness.GatewayTestCase):
    def ct(self, priority_study=None):
        ds = pydicom.dcmread(os.path.join(harness.PYDICOM_FILES, "CT_small.dcm"))
        ds.StudyInstanceUID = priority_study or generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        return harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))

    def test_queue_figures_follow_the_work(self):
        clinic = self.clinic("clinic-a1")
        clinic.json("upload", "--priority", "ROUTINE", self.ct(), self.ct(), self.ct(), timeout=60)
        reader = self.reader("reader-a-rad")
        exam = reader.json("worklist")["items"][0]["exam"]["exam_id"]
        reader.run("claim", exam, check=True)
        admin = Admin(self.gateway, "admin")
        queues = {q["queue"]: q for q in admin.json("queues")["queues"]}
        imaging = queues["county-a/imaging"]
        self.assertEqual(int(imaging["depth"]), 3)
        self.assertEqual(int(imaging["claimed"]), 1)
        self.assertEqual(int(imaging.get("overdue", 0)), 0)
        self.assertIn("oldest_waiting", imaging)
        # Every configured queue is listed, the empty ones too.
        self.assertEqual(int(queues["county-a/ecg"].get("depth", 0)), 0)
        table = admin.run("queues", check=True).stdout
        self.assertRegex(table,
                         r"county-a/imaging\s+Qingshui County People's Hospital · imaging\s+3\s+1\s+2\s")
        self.assertEqual(imaging["queue_name"], "Qingshui County People's Hospital · imaging")

    def test_audit_log_for_administrators(self):
        clinic = self.clinic("clinic-a1")
        clinic.json("upload", self.ct(), timeout=60)
        reader = self.reader("reader-a-rad")
        exam = reader.json("worklist")["items"][0]["exam"]["exam_id"]
        reader.run("claim", exam, check=True)
        reader.run("fetch", exam, "--out", os.path.join(self.workdir, "fetched"), check=True)
        admin = Admin(self.gateway, "admin")
        entries = admin.json("audit", "--exam", exam)["entries"]
        actions = [e["action"] for e in entries]
        self.assertTrue(any("fetch" in a for a in actions), actions)
        self.assertTrue(all(e["exam_id"] == exam for e in entries))
        by_user = admin.json("audit", "--user", "reader-a-rad", "--since", "1h")["entries"]
        self.assertTrue(by_user and all(e["user"] == "reader-a-rad" for e in by_user))
        self.assertEqual({e["institution_name"] for e in by_user},
                         {"Qingshui County People's Hospital"})
        self.assertIn("Qingshui County People's Hospital",
                      admin.run("audit", "--exam", exam, check=True).stdout)
        # Reading the audit log is itself audited.
        mine = admin.json("audit", "--user", "admin")["entries"]
        self.assertIn("admin_audit", [e["action"] for e in mine])
        bad = admin.run("audit", "--since", "yesterday")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--since", bad.stderr)

    def test_only_administrators(self):
        calls = [("GetQueues", admin_pb2.QueuesRequest()),
                 ("QueryAudit", admin_pb2.AuditRequest()),
                 ("GetTurnaround", admin_pb2.TurnaroundRequest()),
                 ("ListBreaches", admin_pb2.BreachesRequest())]
        for who in ("clinic-a1", "reader-a-rad"):
            stub = admin_pb2_grpc.AdminServiceStub(self.channel(who))
            for name, request in calls:
                with self.subTest(who=who, rpc=name):
                    with self.assertRaises(grpc.RpcError) as err:
                        getattr(stub, name)(request, timeout=30)
                    self.assertEqual(err.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        denied = Admin(self.gateway, "clinic-a1").run("queues")
        self.assertEqual(denied.returncode, 1)
        self.assertIn("may not use", denied.stderr)
        admin = admin_pb2_grpc.AdminServiceStub(self.channel("admin"))
        for name, request in calls:
            getattr(admin, name)(request, timeout=30)  # allowed


def exam_states(gateway, exam):
    names = {v.number: v.name for v in common_pb2.ExamState.DESCRIPTOR.values}
    return [names[s] for (s,) in gateway.query(
        "SELECT state FROM exam_events WHERE exam_id = ? ORDER BY seq", exam)]


class SlaTest(harness.GatewayTestCase):
    """Breaches and turnaround with the gateway's clock moved by the test (no sleeping for SLA
    targets); housekeeping every second so a sweep follows each move quickly."""
    injected_clock = True
    extra_config = "housekeeping_seconds: 1\n"

    def upload_ct(self, priority):
        ds = pydicom.dcmread(os.path.join(harness.PYDICOM_FILES, "CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))
        out = self.clinic("clinic-a1").json("upload", "--priority", priority, path)
        return out["exams"][0]["exam_id"]

    def test_unclaimed_stat_exam_is_breached_and_escalated(self):
        admin = Admin(self.gateway, "admin")
        exam = self.upload_ct("STAT")  # demo policy: STAT CT claimed within 10 min
        self.set_clock_offset(9 * 60)
        self.assertEqual(admin.json("breaches", "--open"), {})
        self.set_clock_offset(11 * 60)

        def escalated_breach():
            open_ = admin.json("breaches", "--open").get("breaches", [])
            mine = [b for b in open_ if b["exam_id"] == exam and b["stage"] == "RECEIVED_TO_CLAIMED"]
            return mine[0] if mine and mine[0]["queue"] != "county-a/imaging" else None
        breach = harness.wait_for(escalated_breach, timeout=30, interval=0.2,
                                  what="the breach recorded and the exam escalated")
        self.assertEqual(breach["priority"], "STAT")
        self.assertEqual(breach["queue"], "city/radiology-consult")
        self.assertTrue(breach["open"])
        overrun = float(breach["overrun"].rstrip("s"))
        self.assertGreaterEqual(overrun, 60)
        self.assertLess(overrun, 120)
        self.assertIn("ESCALATED", exam_states(self.gateway, exam))
        table = admin.run("breaches", "--open", check=True).stdout
        self.assertRegex(table, exam + r"\s+received->claimed\s+STAT\s+CT\s+"
                                r"Lanxi City Central Hospital · radiology\s+Shuangqiao Township")
        self.assertIn("OPEN", table)

        # Claimed at the city: the breach closes and keeps its overrun.
        self.set_clock_offset(13 * 60)
        self.assertEqual(self.reader("reader-city-rad").run("claim", exam).returncode, 0)
        self.assertNotIn(exam, json.dumps(admin.json("breaches", "--open")))
        closed = [b for b in admin.json("breaches")["breaches"] if b["exam_id"] == exam]
        self.assertEqual(len(closed), 1)
        self.assertNotIn("open", closed[0])
        self.assertGreaterEqual(float(closed[0]["overrun"].rstrip("s")), 180)

    def test_turnaround_of_a_reading(self):
        admin = Admin(self.gateway, "admin")
        rad, a1 = self.reader("reader-a-rad"), self.clinic("clinic-a1")
        exam = self.upload_ct("ROUTINE")
        self.set_clock_offset(20 * 60)
        self.assertEqual(rad.run("claim", exam).returncode, 0)
        self.set_clock_offset(30 * 60)  # within the 15 min lease
        proc = rad.run("report", exam, "--final", "--findings", "Lungs clear.",
                       "--impression", "Normal chest CT.")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.set_clock_offset(40 * 60)
        self.assertEqual(a1.run("ack", exam).returncode, 0)

        figures = admin.json("tat", "--since", "24h", "--by", "county")["groups"]
        self.assertEqual([g["key"] for g in figures], ["county-a"])
        stages = {s["stage"]: s for s in figures[0]["stages"]}
        self.assertEqual(set(stages), {"RECEIVED_TO_CLAIMED", "RECEIVED_TO_FINAL",
                                       "FINAL_TO_ACKNOWLEDGED"})
        for stage, minutes in (("RECEIVED_TO_CLAIMED", 20), ("RECEIVED_TO_FINAL", 30),
                               ("FINAL_TO_ACKNOWLEDGED", 10)):
            with self.subTest(stage=stage):
                self.assertEqual(int(stages[stage]["count"]), 1)
                seconds = float(stages[stage]["p50"].rstrip("s"))
                # The offsets are exact; the real time between the steps adds a little.
                self.assertGreaterEqual(seconds, minutes * 60)
                self.assertLess(seconds, minutes * 60 + 30)
                self.assertEqual(stages[stage]["p50"], stages[stage]["max"])
        # Demo policy for routine CT: claimed within 60 min, final within 24 h: both met.
        self.assertEqual(stages["RECEIVED_TO_FINAL"]["within_sla_share"], 1)
        table = admin.run("tat", "--since", "2h", check=True).stdout
        self.assertRegex(table, r"received->final\s+1\s+30 min")
        by_reviewer = admin.json("tat", "--by", "reviewer")["groups"]
        self.assertEqual([g["key"] for g in by_reviewer], ["county-a"])
        self.assertEqual([g["name"] for g in by_reviewer], ["Qingshui County People's Hospital"])
        # Any window: an explicit one around the stages, and one that ended before them.
        self.assertEqual(len(admin.json("tat", "--since", "2020-01-01", "--until", "2099-01-01")
                             ["groups"][0]["stages"]), 3)
        self.assertEqual(admin.json("tat", "--since", "2d", "--until", "1d"), {})
        self.assertIn("no stage completed", admin.run("tat", "--until", "1h", check=True).stdout)
        bad = admin.run("tat", "--until", "yesterday")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--until", bad.stderr)
        bad = admin.run("tat", "--by", "weather")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--by", bad.stderr)


if __name__ == "__main__":
    unittest.main()
