"""The installed gateway (issue 17): `cmake --install` into a scratch prefix gives the Debian-style
tree, keeps an edited configuration, and the unit's command line runs the installed binaries as
an unprivileged service user on the production example configuration: clinics upload, readers
read, the demo runs, the audit chain verifies, and the data dir belongs to the service user
alone; a backup pulled while a clinic uploads restores into a fresh data dir that serves it."""
import grp
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import unittest

import harness

BUILD_DIR = os.path.dirname(os.path.abspath(harness.BIN_DIR))


def exec_start(unit):
    """The ExecStart command line of a systemd unit file, split into words."""
    with open(unit) as f:
        line = next(l for l in f if l.startswith("ExecStart="))
    return line[len("ExecStart="):].split()


@harness.index_independent
class InstallTest(unittest.TestCase):

    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="rdg-install-")
        self.addCleanup(shutil.rmtree, self.top, ignore_errors=True)
        self.prefix = os.path.join(self.top, "usr")

    def install(self):
        return subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", self.prefix],
                              capture_output=True, text=True, check=True).stdout

    def test_install_then_run_the_units_command_as_the_service_user(self):
        self.install()
        for path in ("bin/rdg-gateway", "bin/rdg-parser", "bin/rdg-clinic", "bin/rdg-reader",
                     "bin/rdg-admin", "lib/systemd/system/rdg-gateway.service",
                     "share/rdg/dev-pki.sh", "share/rdg/dev-crl.sh",
                     "share/rdg/issue-monitoring-token.sh", "share/rdg/prometheus/rdg-alerts.yml",
                     "share/rdg/issue-certificate.sh", "share/rdg/pki/leaf-profiles.cnf",
                     "etc/rdg/gateway.textproto.example"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, path)), path)
        config = os.path.join(self.prefix, "etc/rdg/gateway.textproto")
        self.assertEqual(stat.S_IMODE(os.stat(config).st_mode), 0o640)
        # An edited configuration survives the next install.
        with open(config, "a") as f:
            f.write("# edited by the hospital\n")
        self.assertIn("Kept:", self.install())
        with open(config) as f:
            self.assertTrue(f.read().endswith("# edited by the hospital\n"))

        # /etc/rdg/tls: the hospital CA's certificates (here the dev PKI, made by the installed
        # script) and its CRL.
        tls = os.path.join(self.top, "etc-rdg-tls")
        subprocess.run(["bash", os.path.join(self.prefix, "share/rdg/dev-pki.sh"), tls],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["bash", os.path.join(self.prefix, "share/rdg/dev-crl.sh"), tls],
                       check=True, stdout=subprocess.DEVNULL)
        data = os.path.join(self.top, "var-lib-rdg")
        with open(config) as f:
            text = f.read()
        text = text.replace("/etc/rdg/tls/", tls + "/").replace("/var/lib/rdg", data)
        text = text.replace("/etc/rdg/monitoring.token", os.path.join(tls, "monitoring.token"))
        text = text.replace("/etc/rdg/monitoring-tokens", tls + "-tokens")
        # No audit repository here: one that refuses connections (records wait in the log).
        text = text.replace("audit.example.org:6514", "127.0.0.1:9")
        text = text.replace(tls + "/audit-repository-ca.pem", tls + "/ca.pem")
        text += '\nbackup_users: "province/admin"\n'  # the dev PKI's administrator
        with open(config, "w") as f:
            f.write(text)

        # The unit's command line, on the installed tree, as a service user: nobody when root
        # (no capabilities, like the unit), else this user.
        argv = [w.replace("/usr/bin/", self.prefix + "/bin/").replace(
            "/etc/rdg/", os.path.join(self.prefix, "etc/rdg") + "/") for w in exec_start(
            os.path.join(self.prefix, "lib/systemd/system/rdg-gateway.service"))]
        self.assertEqual(argv[1:], ["--config", config])
        ready = os.path.join(self.top, "ready")
        argv += ["--listen", "127.0.0.1:0", "--monitoring-listen", "127.0.0.1:0",
                 "--ready-file", ready]
        wrapper = []
        if os.geteuid() == 0:
            user, group = pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
            for d, dirs, files in os.walk(self.top):
                for p in [d] + [os.path.join(d, n) for n in dirs + files]:
                    os.lchown(p, user.pw_uid, group.gr_gid)
            wrapper = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={group.gr_gid}",
                       "--clear-groups", "--bounding-set=-all", "--inh-caps=-all"]
        log = os.path.join(self.top, "gateway.log")
        proc, text = harness.start_process(wrapper + argv, ready, log, "installed gateway", 60)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        port = int(text.split()[0])

        def tool(name, who, *args):
            env = dict(os.environ, RDG_GATEWAY=f"127.0.0.1:{port}", RDG_CA=f"{tls}/ca.pem",
                       RDG_CERT=f"{tls}/{who}.pem", RDG_KEY=f"{tls}/{who}.key")
            out = subprocess.run([os.path.join(self.prefix, "bin", name), *args], env=env,
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, f"{name} {args}: {out.stdout}{out.stderr}")
            return out.stdout

        ct = harness.distinct_cts(os.path.join(self.top, "in"), 1)[0]
        exam = json.loads(tool("rdg-clinic", "clinic-a1", "--json", "upload", ct))["exams"][0][
            "exam_id"]
        self.assertIn(exam, tool("rdg-reader", "reader-a-rad", "worklist"))
        tool("rdg-reader", "reader-a-rad", "claim", exam)
        print("\n  " + tool("rdg-admin", "admin", "audit", "verify").strip())

        # The demo (CT, ECG signed with SM2, a critical lab panel; reports verified with openssl)
        # on the installed binaries.
        demo = subprocess.run(["bash", os.path.join(harness.SOURCE_DIR, "deploy/demo.sh"),
                               f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, RDG_DEMO_BIN=os.path.join(self.prefix, "bin"),
                                       RDG_DEMO_PKI=tls))
        self.assertEqual(demo.returncode, 0, demo.stdout[-3000:] + demo.stderr[-3000:])

        # Back up while a clinic uploads, with the installed rdg-admin.
        later = harness.distinct_cts(os.path.join(self.top, "later"), 10, first=300)
        uploads = subprocess.Popen(
            [os.path.join(self.prefix, "bin", "rdg-clinic"), "upload", *later],
            env=dict(os.environ, RDG_GATEWAY=f"127.0.0.1:{port}", RDG_CA=f"{tls}/ca.pem",
                     RDG_CERT=f"{tls}/clinic-a1.pem", RDG_KEY=f"{tls}/clinic-a1.key"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        backup_dir = os.path.join(self.top, "backup")
        summary = json.loads(tool("rdg-admin", "admin", "--json", "backup", backup_dir))
        self.assertEqual(uploads.wait(300), 0, uploads.stderr.read())
        uploads.stderr.close()
        print(f"  backup while uploading: {summary['objects']} objects, audit log to record "
              f"{summary['audit_seq']}")

        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(60), 0)
        owner = os.stat(data).st_uid
        self.assertEqual(owner, os.geteuid() if not wrapper else pwd.getpwnam("nobody").pw_uid)
        for d, dirs, files in os.walk(data):
            for p in [d] + [os.path.join(d, n) for n in dirs + files]:
                st = os.lstat(p)
                self.assertEqual(st.st_uid, owner, p)
                self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, p)

        # Restore into a fresh data dir (README "Backup and restore") and run the unit's command
        # line on it: every object matches its SHA-256, the audit chain verifies, the exam of
        # the first upload is served as it was uploaded.
        restored = os.path.join(self.top, "var-lib-rdg.restored")
        os.makedirs(restored, mode=0o700)
        shutil.copy2(os.path.join(backup_dir, "index.sqlite"), restored)
        shutil.copytree(os.path.join(backup_dir, "blobs"), os.path.join(restored, "blobs"))
        if wrapper:
            for d, dirs, files in os.walk(restored):
                for p in [d] + [os.path.join(d, n) for n in dirs + files]:
                    os.lchown(p, owner, pwd.getpwuid(owner).pw_gid)
        os.remove(ready)
        proc, text = harness.start_process(wrapper + argv + ["--data-dir", restored], ready, log,
                                           "restored gateway", 60)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        port = int(text.split()[0])
        print("  restored: " + tool("rdg-admin", "admin", "backup", "--verify", restored).strip())
        self.assertIn(": intact", tool("rdg-admin", "admin", "audit", "verify"))
        out = os.path.join(self.top, "download")
        tool("rdg-clinic", "clinic-a1", "download", exam, "--out", out)
        self.assertIn(harness.read_bytes(ct),
                      [harness.read_bytes(os.path.join(out, n)) for n in os.listdir(out)])
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(60), 0)


if __name__ == "__main__":
    unittest.main()
