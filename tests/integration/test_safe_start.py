"""A gateway that refuses unsafe states (issue 17): one gateway per data dir and per port, a
read-only or newer index refused at start, a vanished WAL reported by /readyz, owner-only file
modes whatever the umask, the dev PKI's CA key kept out of the gateway's tree, the gateway's
start and stop in the audit log, and --version on every binary."""
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile

import harness

BINARIES = ["rdg-gateway", "rdg-clinic", "rdg-reader", "rdg-admin", "rdg-sim", "rdg-parser"]


def version_of_project():
    with open(os.path.join(harness.SOURCE_DIR, "CMakeLists.txt")) as f:
        for line in f:
            if line.startswith("project(rdg VERSION "):
                return line.split()[2]
    raise AssertionError("no project version in CMakeLists.txt")


def modes_under(top):
    """{relative path: permission bits} of `top` and everything under it."""
    found = {".": stat.S_IMODE(os.stat(top).st_mode)}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(d, name)
            found[os.path.relpath(path, top)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


class SafeStartTest(harness.GatewayTestCase):
    extra_config = "housekeeping_seconds: 1\n"

    def run_gateway(self, data_dir, listen="127.0.0.1:0", wrapper=()):
        """Runs a second rdg-gateway on this test's configuration to its exit (it must not start)."""
        return subprocess.run([*wrapper, os.path.join(harness.BIN_DIR, "rdg-gateway"),
                               "--config", self.gateway.config_path, "--data-dir", data_dir,
                               "--listen", listen, "--monitoring-listen", "127.0.0.1:0"],
                              capture_output=True, text=True, timeout=60)

    def upload_ct(self):
        path = harness.distinct_cts(os.path.join(self.workdir, "in"), 1)[0]
        return self.clinic().json("upload", path)

    @harness.sqlite_only("on PostgreSQL gateways share a data dir (test_replicas)")
    def test_a_second_gateway_on_the_same_data_dir_exits_naming_the_first(self):
        second = self.run_gateway(self.gateway.data_dir)
        print(f"\n  second gateway, same data dir: exit {second.returncode}: "
              f"{second.stderr.strip()[-200:]}")
        self.assertEqual(second.returncode, 1)
        self.assertIn(f"data dir {self.gateway.data_dir} is in use by pid {self.gateway.proc.pid}",
                      second.stderr)
        self.assertEqual(len(self.upload_ct()["exams"]), 1)  # the first one is untouched

    def test_a_second_gateway_on_the_same_port_exits(self):
        other = os.path.join(self.workdir, "other-data")
        second = self.run_gateway(other, listen=self.gateway.address)
        print(f"\n  second gateway, same port: exit {second.returncode}: "
              f"{second.stderr.strip()[-200:]}")
        self.assertEqual(second.returncode, 1)
        self.assertIn(f"cannot listen on {self.gateway.address}", second.stderr)
        self.assertEqual(len(self.upload_ct()["exams"]), 1)

    @harness.sqlite_only("the index file's modes")
    def test_files_are_the_owners_alone_while_running_whatever_the_umask(self):
        self.gateway.stop()
        old = os.umask(0o022)  # a permissive umask for the gateway and the tools
        try:
            self.gateway.start()
            exam = self.upload_ct()["exams"][0]["exam_id"]
            out = os.path.join(self.workdir, "fetched")
            self.clinic().run("download", exam, "--out", out, check=True)
        finally:
            os.umask(old)
        modes = modes_under(self.gateway.data_dir)  # while it runs: -wal and -shm too
        self.assertIn("index.sqlite-wal", modes)
        self.assertIn("index.sqlite-shm", modes)
        loose = {p: oct(m) for p, m in modes.items() if m & 0o077}
        self.assertEqual(loose, {}, "group/other access in the data dir")
        self.assertEqual(modes["."], 0o700)
        self.assertEqual(modes["index.sqlite"], 0o600)
        self.assertEqual(modes["rdg.lock"], 0o600)
        self.assertTrue(any(p.startswith("blobs/") and m == 0o600 for p, m in modes.items()))
        fetched = modes_under(out)
        self.assertTrue(len(fetched) > 1, fetched)
        self.assertEqual({p: oct(m) for p, m in fetched.items() if m & 0o077}, {},
                         "client output readable by others")

    @harness.sqlite_only("the index file's modes")
    def test_a_looser_data_dir_made_before_is_tightened(self):
        self.gateway.stop()
        os.chmod(self.gateway.data_dir, 0o755)
        os.chmod(os.path.join(self.gateway.data_dir, "index.sqlite"), 0o644)
        self.gateway.start()
        self.assertEqual(stat.S_IMODE(os.stat(self.gateway.data_dir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(
            os.path.join(self.gateway.data_dir, "index.sqlite")).st_mode), 0o600)
        self.assertIn("was open to other users: now mode 0700", self.gateway.log())

    @harness.sqlite_only("a read-only index file")
    def test_a_read_only_index_refuses_to_start(self):
        self.gateway.stop()
        index = os.path.join(self.gateway.data_dir, "index.sqlite")
        os.chmod(index, 0o400)
        # root writes any file (CAP_DAC_OVERRIDE): run it without capabilities, as a service
        # user would be.
        wrapper = ("setpriv", "--bounding-set=-all", "--inh-caps=-all") if os.geteuid() == 0 else ()
        refused = self.run_gateway(self.gateway.data_dir, wrapper=wrapper)
        print(f"\n  read-only index: exit {refused.returncode}: {refused.stderr.strip()[-240:]}")
        self.assertEqual(refused.returncode, 1)
        self.assertIn(f"database {index} is read-only for this user", refused.stderr)
        os.chmod(index, 0o600)
        self.gateway.start()

    @harness.sqlite_only("unit.PostgresIndexTest.AnIndexOfANewerReleaseIsRefusedAtOpen")
    def test_a_database_newer_than_the_binary_refuses_to_start(self):
        self.gateway.stop()
        db = sqlite3.connect(os.path.join(self.gateway.data_dir, "index.sqlite"))
        with db:
            db.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (9999, '9999_from_a_newer_release', 0)")
        db.close()
        refused = self.run_gateway(self.gateway.data_dir)
        print(f"\n  newer index: exit {refused.returncode}: {refused.stderr.strip()[-240:]}")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("the index has schema version 9999, newer than this binary's", refused.stderr)
        self.assertIn(f"(rdg {version_of_project()})", refused.stderr)

    @harness.sqlite_only("SQLite's write-ahead log")
    def test_a_vanished_wal_makes_readyz_503_and_refuses_uploads_until_restart(self):
        self.assertEqual(self.gateway.readyz(), (200, "ready\n"))
        os.remove(os.path.join(self.gateway.data_dir, "index.sqlite-wal"))
        status, text = harness.wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
            self.gateway.readyz()), timeout=30, what="/readyz 503")
        print(f"\n  WAL deleted, /readyz: {status} {text.strip()[:160]}")
        self.assertIn("write-ahead log", text)
        self.assertIn("vanished or was replaced", text)
        path = harness.distinct_cts(os.path.join(self.workdir, "late"), 1)[0]
        out = self.clinic().json("upload", path, "--attempts", "2", expect_code=2,
                                timeout=120)["files"][0]
        self.assertEqual(out["code"], "UNAVAILABLE")
        self.assertIn("the gateway's storage is not safe to write now", out["error"])
        self.assertNotIn(self.gateway.data_dir, out["error"])
        self.gateway.stop()
        self.gateway.start()
        self.assertEqual(self.gateway.readyz(), (200, "ready\n"))

    def test_start_and_stop_are_audited(self):
        self.gateway.stop()
        self.gateway.start()
        rows = self.gateway.query("SELECT action, user, detail FROM audit_log "
                                  "WHERE action LIKE 'application_%' ORDER BY seq")
        self.assertEqual([r[0] for r in rows],
                         ["application_start", "application_stop", "application_start"])
        self.assertTrue(all(r[1] == "rdg-gateway" for r in rows), rows)
        self.assertIn(f"rdg {version_of_project()}, pid {self.gateway.proc.pid}", rows[-1][2])


@harness.index_independent
class VersionTest(harness.unittest.TestCase):

    def test_every_binary_prints_its_version(self):
        expected = version_of_project()
        for name in BINARIES:
            out = subprocess.run([os.path.join(harness.BIN_DIR, name), "--version"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual((out.returncode, out.stdout.strip()), (0, f"{name} {expected}"),
                             out.stderr)


@harness.index_independent
class QuickStartPkiTest(harness.unittest.TestCase):

    def test_the_dev_pki_is_owner_only_and_its_ca_key_outside_the_gateways_tree(self):
        top = tempfile.mkdtemp(prefix="rdg-quickstart-")
        self.addCleanup(harness.shutil.rmtree, top, ignore_errors=True)
        var = os.path.join(top, "var")
        # As the quick start: `deploy/dev-pki.sh var/pki`, under a permissive umask.
        subprocess.run(["bash", "-c", f"umask 022 && bash {harness.SOURCE_DIR}/deploy/dev-pki.sh "
                                      f"{var}/pki"], check=True, stdout=subprocess.DEVNULL)
        modes = modes_under(var)
        self.assertEqual(modes["."], 0o700)
        self.assertEqual(modes["pki"], 0o700)
        self.assertEqual(modes["pki-ca"], 0o700)
        self.assertEqual(modes["pki-ca/ca.key"], 0o600)
        self.assertFalse(os.path.exists(os.path.join(var, "pki", "ca.key")))
        keys = [p for p in modes if p.endswith(".key") or p.endswith(".token")]
        self.assertGreater(len(keys), 10)
        self.assertEqual({p: oct(modes[p]) for p in keys if modes[p] != 0o600}, {})
        # The demo configuration reads nothing from where the CA key is, nor keeps data there.
        with open(os.path.join(harness.SOURCE_DIR, "deploy/config/demo.textproto")) as f:
            demo = "".join(line for line in f if not line.lstrip().startswith("#"))
        self.assertNotIn("pki-ca", demo)
        self.assertIn('data_dir: "var/data"', demo)

        # A PKI made by an older script (ca.key among the certificates) has it moved out.
        old = os.path.join(top, "old")
        subprocess.run(["bash", f"{harness.SOURCE_DIR}/deploy/dev-pki.sh", old], check=True,
                       stdout=subprocess.DEVNULL)
        os.rename(os.path.join(old + "-ca", "ca.key"), os.path.join(old, "ca.key"))
        again = subprocess.run(["bash", f"{harness.SOURCE_DIR}/deploy/dev-pki.sh", old],
                               capture_output=True, text=True, check=True)
        self.assertIn("moved ca.key out of", again.stderr)
        self.assertTrue(os.path.exists(os.path.join(old + "-ca", "ca.key")))
        self.assertFalse(os.path.exists(os.path.join(old, "ca.key")))

    def test_the_quick_start_gateway_keeps_its_data_to_its_owner(self):
        """deploy/start-dev-gateway.sh's two steps after the build, as a new user runs them from
        a checkout (relative paths, a permissive umask): the dev PKI in var/pki, then the gateway
        with the demo configuration and --data-dir var/data; a clinic uploads; after the run
        nothing under var/ is open to group or others."""
        top = tempfile.mkdtemp(prefix="rdg-quickstart-")
        self.addCleanup(harness.shutil.rmtree, top, ignore_errors=True)
        shell = lambda cmd: subprocess.run(["bash", "-c", "umask 022 && " + cmd], cwd=top,
                                           check=True, stdout=subprocess.DEVNULL)
        shell(f"bash {harness.SOURCE_DIR}/deploy/dev-pki.sh var/pki")
        os.makedirs(os.path.join(top, "deploy/config"))
        shutil.copy(os.path.join(harness.SOURCE_DIR, "deploy/config/demo.textproto"),
                    os.path.join(top, "deploy/config"))
        ready = os.path.join(top, "var/ready")
        gateway, text = harness.start_process(
            ["bash", "-c", "umask 022 && exec " + " ".join([
                os.path.join(harness.BIN_DIR, "rdg-gateway"), "--config",
                "deploy/config/demo.textproto", "--data-dir", "var/data", "--listen",
                "127.0.0.1:0", "--monitoring-listen", "127.0.0.1:0", "--ready-file", ready])],
            ready, os.path.join(top, "gateway.log"), "quick-start gateway", 30, cwd=top)
        self.addCleanup(lambda: gateway.poll() is None and gateway.kill())
        env = dict(os.environ, RDG_GATEWAY=f"127.0.0.1:{text.split()[0]}",
                   RDG_CA=f"{top}/var/pki/ca.pem", RDG_CERT=f"{top}/var/pki/clinic-a1.pem",
                   RDG_KEY=f"{top}/var/pki/clinic-a1.key")
        ct = harness.distinct_cts(os.path.join(top, "in"), 1)[0]
        subprocess.run([os.path.join(harness.BIN_DIR, "rdg-clinic"), "upload", ct], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        gateway.terminate()
        self.assertEqual(gateway.wait(30), 0)
        modes = modes_under(os.path.join(top, "var"))
        self.assertEqual(modes["data"], 0o700)
        self.assertIn("data/index.sqlite", modes)
        self.assertTrue(any(p.startswith("data/blobs/") and len(p) > 20 for p in modes))
        self.assertEqual(modes["."], 0o700)  # var/ itself; certificates in it are public
        private = {p: oct(m) for p, m in modes.items()
                   if (p.startswith("data") or p.endswith((".key", ".token"))) and m & 0o077}
        self.assertEqual(private, {})


if __name__ == "__main__":
    harness.unittest.main()
