"""A gateway whose disk fills (issue 12): clinics are told the gateway is busy (UNAVAILABLE, not a
refusal), the edge agent dead-letters nothing, and once space returns every upload completes
without a restart. Before it fills, the disk reserve (issue 17) turns uploads away and /readyz
says why, and both recover when space returns. An agent whose disk fills (issue 13) answers each C-STORE A700 and keeps the
association; once space returns the same objects are stored without a restart. The data dir is
a small tmpfs the test mounts (root only) and unmounts."""
import os
import shutil
import subprocess
import tempfile

import harness


class TmpfsTestCase(harness.GatewayTestCase):

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting the small tmpfs this test fills needs root")
        self.mount = tempfile.mkdtemp(prefix="rdg-tmpfs-")
        self.addCleanup(shutil.rmtree, self.mount, ignore_errors=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs",
                                  self.mount], capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", self.mount], check=False)
        super().setUp()

    def fill(self):
        """Leaves the mounted filesystem with no free space (the filler file is returned)."""
        filler = os.path.join(self.mount, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for block in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * block)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return filler


class DiskFullTest(TmpfsTestCase):
    # No reserve: what happens when the disk really fills (ENOSPC), the last line of defence.
    extra_config = "disk_reserve_mb: 0\n"

    def start_gateway_on_tmpfs(self):
        self.gateway.stop()
        self.gateway.data_dir = os.path.join(self.mount, "var")
        self.gateway.start(port=0)

    def test_full_disk_is_busy_not_refused_and_uploads_complete_when_space_returns(self):
        self.start_gateway_on_tmpfs()
        pid = self.gateway.proc.pid
        # Short retry pauses: the outbox drains soon after space returns.
        agent = harness.Agent(self.workdir, self.gateway,
                              extra="forwarder { initial_backoff_ms: 50 max_backoff_ms: 1000 }\n")
        agent.start()
        self.addCleanup(agent.stop)
        files = harness.distinct_cts(os.path.join(self.workdir, "in"), 6)
        filler = self.fill()

        # A clinic uploading directly: "busy", exit 2 (try again), not a rejection.
        clinic = self.clinic("clinic-b1")
        out = clinic.json("upload", files[0], "--attempts", "2", expect_code=2, timeout=120)
        f = out["files"][0]
        print(f"\n  disk full, rdg-clinic: {f['code']}: {f['error'][:120]}")
        self.assertEqual(f["code"], "UNAVAILABLE")
        self.assertTrue(f.get("gateway_busy"), f)
        self.assertIn("No space left on device", f["error"])

        # Devices send to the agent: it accepts them into its outbox and keeps retrying.
        agent.storescu(*files[1:])
        def tried_and_holding():
            s = agent.status()
            return s if s["pending"] == 5 and s.get("last_error") else None
        status = harness.wait_for(tried_and_holding, timeout=60, what="agent tried and holds 5")
        print(f"  disk full, agent: {status['pending']} pending, {status['dead_letter']} dead "
              f"letters, last error: {status['last_error'][:100]}")
        self.assertEqual(status["dead_letter"], 0)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(0,)])

        # Space returns: everything completes, the gateway was never restarted.
        os.remove(filler)
        status = agent.wait_drained(expect_sent=5, timeout=120)
        self.assertEqual(status["dead_letter"], 0)
        again = clinic.json("upload", files[0], timeout=120)
        self.assertTrue(again["files"][0]["ok"], again)
        self.assertEqual(self.gateway.proc.pid, pid)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(6,)])
        self.assert_gateway_alive()


class DiskReserveTest(TmpfsTestCase):
    extra_config = "disk_reserve_mb: 16\nhousekeeping_seconds: 1\n"

    def test_below_the_reserve_readyz_is_503_and_uploads_busy_until_space_returns(self):
        self.gateway.stop()
        self.gateway.data_dir = os.path.join(self.mount, "var")
        self.gateway.start(port=0)
        pid = self.gateway.proc.pid
        self.assertEqual(self.gateway.readyz(), (200, "ready\n"))
        files = harness.distinct_cts(os.path.join(self.workdir, "in"), 2)
        clinic = self.clinic("clinic-b1")
        self.assertTrue(clinic.json("upload", files[0], timeout=120)["files"][0]["ok"])

        filler = self.fill()
        status, text = self.gateway.readyz()
        print(f"\n  below the reserve, /readyz: {status} {text.strip()}")
        self.assertEqual(status, 503)
        self.assertIn("not ready: disk below its reserve: 0 MiB free on the data dir's filesystem, "
                      "disk_reserve_mb is 16 MiB", text)
        out = clinic.json("upload", files[1], "--attempts", "2", expect_code=2, timeout=120)
        f = out["files"][0]
        print(f"  below the reserve, rdg-clinic: {f['code']}: {f['error'][:120]}")
        self.assertEqual(f["code"], "UNAVAILABLE")
        self.assertTrue(f.get("gateway_busy"), f)
        self.assertIn("disk below its reserve", f["error"])
        self.assertIn("not ready, uploads refused: disk below its reserve",
                      harness.wait_for(lambda: "uploads refused" in self.gateway.log()
                                       and self.gateway.log(), timeout=30, what="log line"))

        os.remove(filler)
        self.assertEqual(self.gateway.readyz(), (200, "ready\n"))
        self.assertTrue(clinic.json("upload", files[1], timeout=120)["files"][0]["ok"])
        self.assertEqual(self.gateway.proc.pid, pid)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(2,)])
        self.assert_gateway_alive()


@harness.index_independent
class AgentDiskFullTest(TmpfsTestCase):

    def test_agent_disk_full_answers_a700_keeps_the_association_and_recovers(self):
        agent = harness.Agent(self.workdir, self.gateway,
                              data_dir=os.path.join(self.mount, "agent-data")).start()
        self.addCleanup(agent.stop)
        pid = agent.proc.pid
        files = harness.distinct_cts(os.path.join(self.workdir, "in"), 4)
        agent.storescu(files[0])
        agent.wait_drained(expect_sent=1)
        filler = self.fill()

        # Three objects over one association: each is answered "out of resources", none aborts it.
        # -nh: go on after a refusal, as a device sends the rest of its batch; -d: show the
        # responses with their Error Comment.
        full = agent.storescu(*files[1:], check=False, options=("-nh", "-d"))
        said = full.stdout + full.stderr
        a700 = "0xa700: Refused: Out of resources"
        print(f"\n  agent disk full, storescu: exit {full.returncode}; "
              f"{said.count(a700)} responses A700")
        self.assertNotIn("Peer aborted", said)
        self.assertNotIn("Association Abort", said)
        self.assertIn("Releasing Association", said)
        self.assertEqual(said.count(a700), 3, said)
        self.assertIn("agent cannot write to its disk", said)
        self.assertIsNone(agent.proc.poll(), "the agent died")
        self.assertEqual(agent.status()["pending"], 0)

        # Space returns: the device's next attempt is stored, by the same agent process.
        os.remove(filler)
        agent.storescu(*files[1:])
        agent.wait_drained(expect_sent=4)
        self.assertEqual(agent.proc.pid, pid)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(4,)])
        self.assertEqual(agent.status()["dead_letter"], 0)
