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


@harness.sqlite_only("a PostgreSQL index is backed up with pg_dump")
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
        exams = {self.clinic().json("upload", p)["exams"][0]["exam_id"] for p in first}
        # A clinic keeps uploading while the backup runs.
        later = harness.distinct_cts(os.path.join(self.workdir, "later"), 20, first=200)
        failures = []

        def upload_later():
            for p in later:
                proc = self.clinic().run("--json", "upload", p)
                if proc.returncode != 0:
                    failures.append(proc.stderr)
                else:
                    exams.add(json.loads(proc.stdout)["exams"][0]["exam_id"])
        uploader = threading.Thread(target=upload_later)
        uploader.start()
        harness.wait_for(lambda: self.gateway.query("SELECT COUNT(*) FROM objects")[0][0] > 5,
                         timeout=60, what="the uploads under way")
        folder = os.path.join(self.workdir, "backup")
        during = self.backup(folder)
        overlapped = uploader.is_alive()
        uploader.join(600)
        self.assertFalse(uploader.is_alive())
        self.assertEqual(failures, [])
        print(f"\n  backup during uploads ({'still running' if overlapped else 'done'} when it "
              f"ended): {during['objects']} objects, index {during['index_bytes']} bytes, "
              f"audit log to record {during['audit_seq']}")
        self.assertGreater(during["objects"], 5)
        self.assertEqual(during["copied"], during["objects"])
        self.assertEqual(os.stat(folder).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(folder, "index.sqlite")).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(os.path.join(folder, "index.sqlite.new")))
        verified = self.admin().run("--json", "backup", "--verify", folder)
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        self.assertEqual(json.loads(verified.stdout)["problems"], [])

        # Again into a copy of it: only what is new is copied.
        again_folder = os.path.join(self.workdir, "backup-again")
        shutil.copytree(folder, again_folder)
        again = self.backup(again_folder)
        self.assertEqual(again["objects"], len(first) + len(later))
        self.assertEqual(again["copied"], again["objects"] - during["objects"])

        # A damaged copy is found out.
        damaged = os.path.join(self.workdir, "damaged")
        shutil.copytree(again_folder, damaged)
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

        # Restore the backup taken during the uploads into a fresh data dir (the backup's
        # layout is the data dir's) and serve from it.
        restored_dir = tempfile.mkdtemp(prefix="rdg-restore-")
        self.addCleanup(shutil.rmtree, restored_dir, True)
        restored = harness.Gateway(restored_dir, self.pki, self.extra_config)
        os.makedirs(restored.data_dir, mode=0o700)
        shutil.copy2(os.path.join(folder, "index.sqlite"), restored.data_dir)
        shutil.copytree(os.path.join(folder, "blobs"), os.path.join(restored.data_dir, "blobs"))
        self.gateway.stop()
        restored.start(port=0)
        self.addCleanup(restored.stop)
        proc = self.admin(restored).run("backup", "--verify", restored.data_dir)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        chain = self.admin(restored).run("audit", "verify")
        self.assertEqual(chain.returncode, 0, chain.stdout + chain.stderr)
        print("  restored: " + chain.stdout.strip().splitlines()[0])
        # Every object of the snapshot, byte for byte as uploaded (downloaded, never re-sent).
        uploaded = {harness.read_bytes(p) for p in first + later}
        downloaded = []
        clinic = harness.Clinic(restored, "clinic-a1")
        for exam in exams:
            out = os.path.join(restored_dir, "dl-" + exam)
            proc = clinic.run("download", exam, "--out", out)
            if proc.returncode != 0:  # an exam whose first object came after the snapshot
                self.assertIn("NOT_FOUND", proc.stderr + proc.stdout)
                continue
            downloaded += [harness.read_bytes(os.path.join(out, n)) for n in os.listdir(out)]
        self.assertEqual(len(downloaded), during["objects"])
        self.assertLessEqual(set(downloaded), uploaded)
        self.assertLessEqual({harness.read_bytes(p) for p in first}, set(downloaded))

    def test_only_named_administrators_may_pull_a_backup(self):
        plain = harness.Gateway(tempfile.mkdtemp(prefix="rdg-test-"), self.pki)
        self.addCleanup(shutil.rmtree, plain.workdir, True)
        plain.start(port=0)
        self.addCleanup(plain.stop)
        proc = self.admin(plain).run("backup", os.path.join(self.workdir, "b"))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("is not listed in the gateway's backup_users", proc.stderr)
        harness.wait_for(  # refusals are written on the worker pool, after the answer
            lambda: plain.query("SELECT outcome FROM audit_log WHERE action = 'backup_index'"),
            timeout=10, what="the refusal audited")
        self.assertEqual(plain.query("SELECT outcome FROM audit_log WHERE action = 'backup_index'"),
                         [("PERMISSION_DENIED",)])
        # A clinic at the same call.
        proc = Admin(self.gateway, "clinic-a1").run("backup", os.path.join(self.workdir, "c"))
        self.assertEqual(proc.returncode, 1)


if __name__ == "__main__":
    harness.unittest.main()
