"""Test harness: starts the real rdg-gateway on port 0 with a temporary data dir and a dev PKI,
and runs the real rdg-clinic against it. Used by every integration and interop test.

Environment (set by CTest): RDG_BIN_DIR (build/bin), RDG_SOURCE_DIR (repository root).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN_DIR = os.environ.get("RDG_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SOURCE_DIR = os.environ.get("RDG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PYDICOM_FILES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

_pki_cache = {}


def make_pki(name="platform"):
    """A dev PKI made by deploy/dev-pki.sh, created once per test process and name."""
    if name not in _pki_cache:
        out = tempfile.mkdtemp(prefix=f"rdg-pki-{name}-")
        subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy/dev-pki.sh"), out],
                       check=True, stdout=subprocess.DEVNULL)
        _pki_cache[name] = out
    return _pki_cache[name]


def wait_for(predicate, timeout=30.0, interval=0.02, what="condition"):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Gateway:
    """One rdg-gateway process with its own data dir; restartable on the same data."""

    def __init__(self, workdir, pki, extra_config=""):
        self.workdir = workdir
        self.pki = pki
        self.data_dir = os.path.join(workdir, "var")
        self.config_path = os.path.join(workdir, "gateway.textproto")
        with open(os.path.join(SOURCE_DIR, "deploy/config/demo.textproto")) as f:
            demo = f.read()
        demo = demo.replace("var/pki/", pki + "/")
        with open(self.config_path, "w") as f:
            f.write(demo + "\n" + extra_config)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "gateway.log")

    def start(self, timeout=30.0):
        ready = os.path.join(self.workdir, "ready")
        if os.path.exists(ready):
            os.remove(ready)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [os.path.join(BIN_DIR, "rdg-gateway"), "--config", self.config_path,
             "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, "--ready-file", ready],
            stdout=log, stderr=subprocess.STDOUT)

        def is_ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}: {self.log()}")
            return os.path.exists(ready)
        wait_for(is_ready, timeout, what="gateway ready file")
        with open(ready) as f:
            self.port = int(f.read().strip())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


class Clinic:
    """Runs rdg-clinic as one certificate holder (NAME.pem/.key of the PKI)."""

    def __init__(self, gateway, name, pki=None, ca=None):
        pki = pki or gateway.pki
        self.gateway = gateway
        self.env = dict(os.environ)
        self.env.update({
            "RDG_GATEWAY": gateway.address,
            "RDG_CA": ca or os.path.join(gateway.pki, "ca.pem"),
            "RDG_CERT": os.path.join(pki, f"{name}.pem"),
            "RDG_KEY": os.path.join(pki, f"{name}.key"),
        })

    def run(self, *args, timeout=300, check=False):
        proc = subprocess.run([os.path.join(BIN_DIR, "rdg-clinic"), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"rdg-clinic {args} failed ({proc.returncode}): "
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args):
        return subprocess.Popen([os.path.join(BIN_DIR, "rdg-clinic"), *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def json(self, *args, expect_code=0, timeout=300):
        proc = self.run("--json", *args, timeout=timeout)
        if proc.returncode != expect_code:
            raise AssertionError(f"rdg-clinic {args}: exit {proc.returncode}, wanted {expect_code}:"
                                 f"\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout)


class GatewayTestCase(unittest.TestCase):
    """Gives each test a fresh gateway (and a temporary directory) on the shared dev PKI."""

    extra_config = ""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="rdg-test-")
        self.pki = make_pki()
        self.gateway = Gateway(self.workdir, self.pki, self.extra_config).start()

    def tearDown(self):
        self.gateway.stop()
        if self._outcome_ok():
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"\nkept {self.workdir} for inspection; gateway log:\n{self.gateway.log()[-4000:]}")

    def _outcome_ok(self):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(outcome, "errors", None) or getattr(getattr(outcome, "result", None), "errors", [])
        return not any(e for _, e in errors if e) if isinstance(errors, list) else True

    def clinic(self, name="clinic-a1", **kw):
        return Clinic(self.gateway, name, **kw)
