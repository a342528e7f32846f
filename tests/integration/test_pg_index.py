"""The gateway on a PostgreSQL index of its own cluster: when the database goes away the gateway
stays up, says so (/readyz 503 naming the index, calls UNAVAILABLE), and carries on by itself
when the database returns — nothing acknowledged is lost."""
import os
import shutil
import tempfile
import time
import unittest

import harness
import pg_cluster


class DatabaseDownTest(unittest.TestCase):
    def setUp(self):
        self.cluster = pg_cluster.PgCluster().start()
        self.addCleanup(self.cluster.stop)
        self.workdir = tempfile.mkdtemp(prefix="rdg-pg-index-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.gateway = harness.Gateway(self.workdir, harness.make_pki(), "housekeeping_seconds: 1\n",
                                       index_dsn=self.cluster.dsn)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.clinic = harness.Clinic(self.gateway, "clinic-a1")
        self.cts = harness.distinct_cts(os.path.join(self.workdir, "cts"), 2)

    def wait_ready(self, want, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.gateway.readyz()
            if (status == 200) == want:
                return body
            if time.monotonic() > deadline:
                self.fail(f"/readyz still {status} {body!r} after {timeout} s")
            time.sleep(0.2)

    def test_the_gateway_waits_out_a_database_restart(self):
        first = self.clinic.json("upload", self.cts[0], timeout=60)
        self.assertEqual(len(first["exams"]), 1)
        self.wait_ready(True)

        self.cluster.pause()
        body = self.wait_ready(False)
        self.assertIn("PostgreSQL", body)
        # libpq's reason names the database's address: for the operators' log, not /readyz.
        self.assertNotIn(str(self.cluster.port), body)
        harness.wait_for(lambda: "Connection refused" in self.gateway.log() or None, timeout=30,
                         what="libpq's reason in the gateway's log")
        listing = self.clinic.run("--json", "exams", timeout=60)
        self.assertNotEqual(listing.returncode, 0)
        said = listing.stdout + listing.stderr
        self.assertIn("busy", said)  # UNAVAILABLE: a client retries
        self.assertIn("index database cannot be reached", said)
        self.assertNotIn(str(self.cluster.port), said, "the database's address is the operators'")
        self.assertIsNone(self.gateway.crash_report())

        self.cluster.resume()
        self.wait_ready(True)
        second = self.clinic.json("upload", self.cts[1], timeout=60)
        self.assertEqual(second["exams"][0]["exam_id"], first["exams"][0]["exam_id"])
        exams = self.clinic.json("exams")["exams"]
        self.assertEqual([e["instance_count"] for e in exams], [2])
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects")[0][0], 2)


if __name__ == "__main__":
    unittest.main()
