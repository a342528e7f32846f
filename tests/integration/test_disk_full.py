"""A gateway whose disk fills (issue 12): clinics are told the gateway is busy (UNAVAILABLE, not a
refusal), the edge agent dead-letters nothing, and once space returns every upload completes
without a restart. The data dir is a small tmpfs the test mounts (root only) and unmounts."""
import os
import shutil
import subprocess
import tempfile

import pydicom

import harness

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


def distinct_cts(folder, count):
    """`count` CT files, each its own instance (new SOP Instance UID), as the modality writes."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        ds = pydicom.dcmread(CT_SMALL)
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{900 + i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        paths.append(harness.write_dicom(ds, os.path.join(folder, f"ct{i}.dcm")))
    return paths


class DiskFullTest(harness.GatewayTestCase):

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

    def start_gateway_on_tmpfs(self):
        self.gateway.stop()
        self.gateway.data_dir = os.path.join(self.mount, "var")
        self.gateway.start(port=0)

    def fill(self):
        """Leaves the data dir's filesystem with no free space (the filler file is returned)."""
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

    def test_full_disk_is_busy_not_refused_and_uploads_complete_when_space_returns(self):
        self.start_gateway_on_tmpfs()
        pid = self.gateway.proc.pid
        agent = harness.Agent(self.workdir, self.gateway).start()
        self.addCleanup(agent.stop)
        files = distinct_cts(os.path.join(self.workdir, "in"), 6)
        filler = self.fill()

        # A clinic uploading directly: "busy", exit 2 (try again), not a rejection.
        clinic = self.clinic("clinic-b1")
        out = clinic.json("upload", files[0], expect_code=2, timeout=120)
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
