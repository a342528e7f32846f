"""Online backup and restore (issue 17): `rdg-admin backup DIR` pulls a consistent snapshot of
the index and every stored object it references while clinics keep uploading; the backup checks
itself offline; restored into a fresh data dir it serves the same exams byte for byte, and its
audit chain verifies. Only administrators named in backup_users may pull one."""
import json
import os
import shutil
import tempfile
import threading

import harness


class Admin(harness.Reader):
    program = "rdg-admin"


class BackupTest(harness.GatewayTestCase):
    extra_config = 'backup_users: "province/admin"\n'

    def admin(self, gateway=None):
        return Admin(gateway or self.gateway, "admin")

    def backup(self, folder, *extra, expect=0):
        proc = self.admin().run("--json", "backup", folder, *extra, timeout=600)
        self.assertEqual(proc.returncode, expect, proc.stdout + proc.stderr)
        return json.loads(proc.stdout) if expect == 0 else proc.stdout + proc.stderr

    def test_backup_while_uploading_then_restore_into_a_fresh_data_dir(self):
        first = harness.distinct_cts(os.path.join(self.workdir, "first"), 5, first=100)
        exams = {p: self.clinic().json("upload", p)["exams"][0]["exam_id"] for p in first}
        # Uploads go on while the backup runs.
        later = harness.distinct_cts(os.path.join(self.workdir, "later"), 20, first=200)
        uploader = threading.Thread(
            target=lambda: [self.clinic().run("upload", p, check=True) for p in later])
        uploader.start()
        folder = os.path.join(self.workdir, "backup")
        summary = self.backup(folder)
        uploader.join(600)
        print(f"\n  backup during uploads: {summary['objects']} objects, index "
              f"{summary['index_bytes']} bytes, audit log to record {summary['audit_seq']}")
        self.assertGreaterEqual(summary["objects"], 5)
        self.assertEqual(summary["copied"], summary["objects"])
        self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(folder, "index.sqlite")).st_mode & 0o777, 0o600)
        verified = self.admin().run("--json", "backup", "--verify", folder)
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        self.assertEqual(json.loads(verified.stdout)["problems"], [])

        # A second backup into the same folder copies only what is new.
        again = self.backup(folder)
        self.assertEqual(again["objects"], len(first) + len(later))
        self.assertEqual(again["copied"], again["objects"] - summary["objects"])

        # A damaged copy of it is found out.
        damaged = os.path.join(self.workdir, "damaged")
        shutil.copytree(folder, damaged)
        blob = next(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(damaged, "blobs"))
                    for f in fs)
        with open(blob, "r+b") as f:  # one bit of one byte
            f.seek(100)
            byte = f.read(1)[0]
            f.seek(100)
            f.write(bytes([byte ^ 1]))
        proc = self.admin().run("backup", "--verify", damaged)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("do not match their SHA-256", proc.stdout)

        # Restore into a fresh data dir: the backup's layout is the data dir's.
        restored_dir = tempfile.mkdtemp(prefix="rdg-restore-")
        self.addCleanup(shutil.rmtree, restored_dir, True)
        restored = harness.Gateway(restored_dir, self.pki, self.extra_config)
        os.makedirs(restored.data_dir, mode=0o700)
        shutil.copy2(os.path.join(folder, "index.sqlite"), restored.data_dir)
        shutil.copytree(os.path.join(folder, "blobs"), os.path.join(restored.data_dir, "blobs"))
        self.gateway.stop()
        restored.start(port=0)
        self.addCleanup(restored.stop)
        # The restored data dir is itself a whole backup: every object matches its SHA-256.
        proc = self.admin(restored).run("backup", "--verify", restored.data_dir)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        chain = self.admin(restored).run("audit", "verify")
        self.assertEqual(chain.returncode, 0, chain.stdout + chain.stderr)
        print("  restored: " + chain.stdout.strip().splitlines()[-1])
        clinic = harness.Clinic(restored, "clinic-a1")
        uploaded = {harness.read_bytes(p) for p in first + later}
        downloaded = set()
        for exam in {clinic.json("upload", p)["exams"][0]["exam_id"] for p in first + later}:
            out = os.path.join(restored_dir, "dl-" + exam)  # (already stored: its exam id)
            proc = clinic.run("download", exam, "--out", out)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            downloaded |= {harness.read_bytes(os.path.join(out, n)) for n in os.listdir(out)}
        self.assertEqual(downloaded, uploaded)  # every object, byte for byte

    def test_only_named_administrators_may_pull_a_backup(self):
        plain = harness.Gateway(tempfile.mkdtemp(prefix="rdg-test-"), self.pki)
        self.addCleanup(shutil.rmtree, plain.workdir, True)
        plain.start(port=0)
        self.addCleanup(plain.stop)
        proc = self.admin(plain).run("backup", os.path.join(self.workdir, "b"))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("is not listed in the gateway's backup_users", proc.stderr)
        self.assertEqual(plain.query("SELECT outcome FROM audit_log WHERE action = 'backup_index'"),
                         [("PERMISSION_DENIED",)])
        # A clinic at the same call.
        proc = Admin(self.gateway, "clinic-a1").run("backup", os.path.join(self.workdir, "c"))
        self.assertEqual(proc.returncode, 1)


if __name__ == "__main__":
    harness.unittest.main()
