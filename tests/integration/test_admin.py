"""AdminService and rdg-admin against the real gateway: queue figures (depth, being read, oldest
waiting, overdue) agree with what clinics and readers did; the audit log is readable by
administrators only, and reading it is itself audited; every admin RPC is PERMISSION_DENIED to
clinics and readers. (Turnaround and breaches are not implemented yet: UNIMPLEMENTED, after the
role check.)"""
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
admin_pb2_grpc = importlib.import_module("rdg.v1.admin_pb2_grpc")


class Admin(harness.Reader):
    program = "rdg-admin"


class AdminTest(harness.GatewayTestCase):
    def channel(self, name):
        def read(suffix):
            with open(os.path.join(self.pki, name + suffix), "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=read_ca(self.pki),
                                             private_key=read(".key"),
                                             certificate_chain=read(".pem"))
        return grpc.secure_channel(self.gateway.address, creds)

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
        self.assertRegex(table, r"county-a/imaging\s+3\s+1\s+2\s")

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
        for name, request in calls[2:]:
            with self.assertRaises(grpc.RpcError) as err:
                getattr(admin, name)(request, timeout=30)
            self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


def read_ca(pki):
    with open(os.path.join(pki, "ca.pem"), "rb") as f:
        return f.read()


if __name__ == "__main__":
    unittest.main()
