"""Claim leases against the real binaries, with the gateway's injected clock moved by the test
(--clock-offset-file) instead of sleeping: expiry hands the exam to another reader, renewal keeps
it, and every step is recorded."""
import os
import shutil
import tempfile
import unittest

import harness

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
LEASE_MINUTES = 15  # demo config: claims.lease_seconds 900


class LeaseTest(unittest.TestCase):

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="rdg-lease-")
        self.offset_file = os.path.join(self.workdir, "clock-offset")
        self.set_offset_minutes(0)
        self.gateway = harness.Gateway(self.workdir, harness.make_pki())
        self.gateway.extra_args = ["--clock-offset-file", self.offset_file]
        self.gateway.start()
        clinic = harness.Clinic(self.gateway, "clinic-a1")
        out = clinic.json("upload", CT_SMALL)
        self.exam = out["exams"][0]["exam_id"]
        self.rad = harness.Reader(self.gateway, "reader-a-rad")
        self.lab = harness.Reader(self.gateway, "reader-a-rad2")

    def tearDown(self):
        self.gateway.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def set_offset_minutes(self, minutes):
        with open(self.offset_file + ".tmp", "w") as f:
            f.write(str(minutes * 60))
        os.replace(self.offset_file + ".tmp", self.offset_file)

    def events(self):
        return [(state, actor, detail) for state, actor, detail in self.gateway.query(
            "SELECT state, actor, detail FROM exam_events WHERE exam_id = ? ORDER BY seq",
            self.exam)]

    def test_expired_lease_goes_to_the_next_reader(self):
        self.assertEqual(self.rad.run("claim", self.exam).returncode, 0)
        self.set_offset_minutes(LEASE_MINUTES - 1)
        refused = self.lab.run("claim", self.exam)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("claimed by reader-a-rad", refused.stderr)
        self.assertRegex(refused.stderr, r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST")  # local time
        self.set_offset_minutes(LEASE_MINUTES + 1)  # the lease has run out
        self.assertEqual(self.lab.run("claim", self.exam).returncode, 0)
        self.assertEqual(self.rad.run("renew", self.exam).returncode, 1)
        fetched = self.rad.run("fetch", self.exam, "--out", os.path.join(self.workdir, "out"))
        self.assertEqual(fetched.returncode, 1)  # an expired lease no longer grants access
        states = [(s, a) for s, a, _ in self.events()]
        self.assertEqual(states, [(1, "clinic-a1"), (2, "system"), (3, "reader-a-rad"),
                                  (9, "system"), (3, "reader-a-rad2")])
        self.assertIn("lease of reader-a-rad expired", self.events()[3][2])

    def test_renewal_keeps_the_exam(self):
        self.assertEqual(self.rad.run("claim", self.exam).returncode, 0)
        self.set_offset_minutes(10)
        self.assertEqual(self.rad.run("renew", self.exam).returncode, 0)  # now until minute 25
        self.set_offset_minutes(20)
        self.assertEqual(self.lab.run("claim", self.exam).returncode, 1)
        worklist = self.lab.json("worklist")
        self.assertEqual(worklist["items"][0]["claim"]["holder_user"], "reader-a-rad")
        self.set_offset_minutes(26)
        self.assertEqual(self.lab.run("claim", self.exam).returncode, 0)


if __name__ == "__main__":
    unittest.main()
