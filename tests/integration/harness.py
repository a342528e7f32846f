"""Test harness: starts the real rdg-gateway on port 0 with a temporary data dir and a dev PKI,
and runs the real rdg-clinic against it. Used by every integration and interop test.

Environment (set by CTest): RDG_BIN_DIR (build/bin), RDG_SOURCE_DIR (repository root).
"""
import atexit
import glob
import json
import os
import re
import shutil
import sqlite3
import struct
import signal
import subprocess
import tempfile
import time
import unittest

import pg_cluster

BIN_DIR = os.environ.get("RDG_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SOURCE_DIR = os.environ.get("RDG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
# The "pg." pass of the suite (tests/CMakeLists.txt): every gateway on a fresh database of the
# test PostgreSQL cluster (RDG_TEST_PG_DSN_FILE) instead of its embedded SQLite index.
INDEX_IS_POSTGRES = os.environ.get("RDG_TEST_INDEX") == "postgres"


def sqlite_only(reason):
    """Skips a test in the PostgreSQL pass: what it checks is the embedded SQLite index's own
    (its files, its migrations, its backup)."""
    return unittest.skipIf(INDEX_IS_POSTGRES, "SQLite index only: " + reason)


# Skips a test in the PostgreSQL pass that does not involve the gateway's index at all.
index_independent = unittest.skipIf(INDEX_IS_POSTGRES, "does not involve the index")


def _test_cluster_dsn():
    with open(os.environ["RDG_TEST_PG_DSN_FILE"]) as f:
        return f.read().strip()
PYDICOM_FILES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

_pki_cache = {}


def make_pki(name="platform"):
    """A dev PKI made by deploy/dev-pki.sh, created once per test process and name: the
    directory of certificates and keys (its CA's key beside it, see ca_key). Under CTest the
    "platform" and "rogue" ones are copies of those the fixture dev_pki made once for the run
    (RDG_TEST_DEV_PKI; tests/mocks/dev_pki.h), which saves seconds per module."""
    if name not in _pki_cache:
        top = tempfile.mkdtemp(prefix=f"rdg-pki-{name}-")
        out = os.path.join(top, "pki")
        made = os.path.join(os.environ.get("RDG_TEST_DEV_PKI", ""),
                            {"platform": "pki"}.get(name, name))
        if os.environ.get("RDG_TEST_DEV_PKI") and os.path.exists(os.path.join(made, "ca.pem")):
            shutil.copytree(made, out)
            shutil.copytree(made + "-ca", out + "-ca")
        else:
            subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy/dev-pki.sh"), out],
                           check=True, stdout=subprocess.DEVNULL)
        atexit.register(shutil.rmtree, top, ignore_errors=True)
        _pki_cache[name] = out
    return _pki_cache[name]


def ca_key(pki):
    """The CA's private key of a PKI made by make_pki (dev-pki.sh keeps it out of the PKI dir)."""
    return pki + "-ca/ca.key"


def wait_for(predicate, timeout=30.0, interval=0.02, what="condition"):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def start_process(argv, ready, log_path, what, timeout, cwd=None):
    """Starts `argv` (in `cwd`) with its output appended to `log_path` and waits until it writes
    the file `ready`; returns (process, ready file text). A process that exits first raises."""
    if os.path.exists(ready):
        os.remove(ready)
    with open(log_path, "a") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)

    def is_ready():
        if proc.poll() is not None:
            with open(log_path, errors="replace") as f:
                raise RuntimeError(f"{what} exited with {proc.returncode}: {f.read()[-4000:]}")
        return os.path.exists(ready)
    wait_for(is_ready, timeout, what=f"{what} ready file")
    with open(ready) as f:
        return proc, f.read()


def _top_level_fields(text):
    """(name, start, end) of each top-level field of a text-format message, comments skipped."""
    fields, i, n = [], 0, len(text)
    while i < n:
        m = re.compile(r"\s*(#[^\n]*\n?)?").match(text, i)
        if m.end() > i:
            i = m.end()
            continue
        m = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(:?)\s*").match(text, i)
        if not m:
            raise ValueError(f"cannot split config text at: {text[i:i + 40]!r}")
        name, start, i = m.group(1), m.start(), m.end()
        if i < n and text[i] in "{<":
            depth, quote = 0, None
            while i < n:
                c = text[i]
                if quote:
                    if c == "\\":
                        i += 1
                    elif c == quote:
                        quote = None
                elif c in "\"'":
                    quote = c
                elif c == "#":
                    i = text.find("\n", i)
                    i = n if i < 0 else i
                    continue
                elif c in "{<[":
                    depth += 1
                elif c in "}>]":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        else:
            m = re.compile(r"(\[[^\]]*\]|\"(\\.|[^\"\\])*\"|'(\\.|[^'\\])*'|[^\s#]+)[ \t]*;?").match(text, i)
            i = m.end()
        fields.append((name, start, i))
    return fields


def _repeated_config_fields():
    """Names of the repeated fields of rdg.v1.GatewayConfig, read from proto/rdg/v1/config.proto."""
    with open(os.path.join(SOURCE_DIR, "proto/rdg/v1/config.proto")) as f:
        proto = f.read()
    body = re.search(r"message GatewayConfig\s*\{(.*?)\n\}", proto, re.S).group(1)
    return set(re.findall(r"^\s*repeated\s+\S+\s+(\w+)\s*=", body, re.M))


def merge_config(base, extra):
    """`base` with the text-format fields of `extra` merged in, the way a later value overrides an
    earlier one (the gateway's parser rejects a singular field given twice): a singular top-level
    scalar replaces the base's; a singular top-level message (`limits { ... }`) merges into the
    base's block, its fields replacing the base's fields of the same name (one level deep);
    repeated fields (institutions, queues, ...) and fields the base lacks are appended. Text the
    splitter cannot parse is appended verbatim (a test may feed a deliberately broken config)."""
    if not extra.strip():
        return base
    try:
        repeated = _repeated_config_fields()
        base_fields = _top_level_fields(base)
        extra_fields = _top_level_fields(extra)
    except (ValueError, AttributeError, OSError):
        return base + "\n" + extra
    appended = []
    for name, start, end in extra_fields:
        piece = extra[start:end].rstrip()
        same = [f for f in base_fields if f[0] == name]
        if name in repeated or not same:
            appended.append(piece)
            continue
        _, bstart, bend = same[-1]
        old = base[bstart:bend]
        if "{" in piece and "{" in old:
            inner_new = piece[piece.index("{") + 1:piece.rindex("}")]
            inner_old = old[old.index("{") + 1:old.rindex("}")]
            try:
                new_names = {f[0] for f in _top_level_fields(inner_new)}
                kept = [inner_old[s:e] for n, s, e in _top_level_fields(inner_old) if n not in new_names]
            except ValueError:
                appended.append(piece)
                continue
            body = "".join("\n  " + k.strip() for k in kept) + "\n  " + inner_new.strip() + "\n"
            merged = old[:old.index("{") + 1] + body + "}"
        else:
            merged = piece
        base = base[:bstart] + merged + base[bend:]
        base_fields = _top_level_fields(base)
    return base + ("\n" + "\n".join(appended) + "\n" if appended else "")


class Gateway:
    """One rdg-gateway process with its own data dir; restartable on the same data."""

    def __init__(self, workdir, pki, extra_config="", index_dsn=None, data_dir=None):
        """`index_dsn`: the gateway's index on that PostgreSQL database (else SQLite in its data
        dir, or a fresh database of the test cluster in the "pg." pass). `data_dir`: default
        WORKDIR/var; replicas on one PostgreSQL index share one."""
        self.workdir = workdir
        self.pki = pki
        self.data_dir = data_dir or os.path.join(workdir, "var")
        self.config_path = os.path.join(workdir, "gateway.textproto")
        with open(os.path.join(SOURCE_DIR, "deploy/config/demo.textproto")) as f:
            demo = f.read()
        demo = demo.replace("var/pki/", pki + "/")
        if index_dsn is None and INDEX_IS_POSTGRES:
            index_dsn = pg_cluster.fresh_database(_test_cluster_dsn())
        self.index_dsn = index_dsn or ""
        if self.index_dsn:
            sqlite_index = "index {\n  sqlite {}\n}"
            if sqlite_index not in demo:  # else the PostgreSQL pass would quietly run on SQLite
                raise AssertionError(f"deploy/config/demo.textproto no longer holds "
                                     f"{sqlite_index!r}: the harness cannot point it at PostgreSQL")
            demo = demo.replace(sqlite_index,
                                'index {\n  postgres { conninfo: "%s" }\n}' % self.index_dsn)
        # The default reserve (1 GiB) would make every test depend on the host's free space.
        demo += "\ndisk_reserve_mb: 64\n"
        with open(self.config_path, "w") as f:
            f.write(merge_config(demo, extra_config.replace("var/pki/", pki + "/")))
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "gateway.log")

    def start(self, timeout=30.0, port=None):
        """Starts (or restarts) the gateway. A restart listens on the port of the previous run, so
        Clinic objects made earlier and clients still retrying reach the new process; pass port=0
        for a fresh port."""
        if port is None:
            port = self.port or 0
        self.proc, text = start_process(
            [os.path.join(BIN_DIR, "rdg-gateway"), "--config", self.config_path,
             "--listen", f"127.0.0.1:{port}", "--data-dir", self.data_dir,
             "--ready-file", os.path.join(self.workdir, "ready"),
             "--monitoring-listen", f"127.0.0.1:{getattr(self, 'monitoring_port', 0) or 0}",
             *getattr(self, "extra_args", [])],
            os.path.join(self.workdir, "ready"), self.log_path, "gateway", timeout)
        ports = text.split()
        self.port = int(ports[0])
        self.monitoring_port = int(ports[1]) if len(ports) > 1 else 0
        self.dicomweb_port = int(ports[2]) if len(ports) > 2 else 0
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends `sig` and waits for the exit; returns the exit code (negative: killed by a signal).
        A gateway that outlives `timeout` is killed and TimeoutExpired raised."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                raise
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    @property
    def monitoring_url(self):
        return f"http://127.0.0.1:{self.monitoring_port}"

    def readyz(self):
        """(status, body) of GET /readyz (no credentials: probes carry none)."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(self.monitoring_url + "/readyz", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    @property
    def monitoring_token(self):
        with open(os.path.join(self.pki, "monitoring.token")) as f:
            return f.read().strip()

    def crash_report(self):
        """None while the gateway runs (or was stopped by the test); otherwise how it ended on
        its own (e.g. killed by SIGABRT/SIGSEGV) and the end of its log."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"rdg-gateway (pid {self.proc.pid}) died on its own with {how}; log tail:\n" \
               f"{self.log()[-3000:]}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    # Inspection of the data dir (read-only; safe while the gateway runs).

    def query(self, sql, *params):
        """Rows of a read-only query against the gateway's index: DATA_DIR/index.sqlite, or its
        PostgreSQL database in the "pg." pass (`?` placeholders either way; the column SQLite
        calls `user` is `user_name` there, a reserved word, and the query's `user` is read so;
        BOOLEAN and BYTEA come back as SQLite's integers and bytes)."""
        if self.index_dsn:
            sql = re.sub(r"\buser\b", "user_name", sql)
            import psycopg2  # only the PostgreSQL pass needs it
            db = psycopg2.connect(self.index_dsn)
            try:
                db.set_session(readonly=True, autocommit=True)
                with db.cursor() as cur:
                    cur.execute(sql.replace("%", "%%").replace("?", "%s"), params)
                    return [tuple(int(v) if isinstance(v, bool) else
                                  bytes(v) if isinstance(v, memoryview) else v for v in row)
                            for row in cur.fetchall()]
            finally:
                db.close()
        db = sqlite3.connect(f"file:{os.path.join(self.data_dir, 'index.sqlite')}?mode=ro",
                             uri=True, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def blob_files(self):
        """Paths of every blob: the files of DATA_DIR/blobs' fan-out directories (not the store's
        own files at its top, such as `holds`)."""
        root = os.path.join(self.data_dir, "blobs")
        return sorted(os.path.join(d, n) for d, _, names in os.walk(root) if d != root
                      for n in names)

    def upload_files(self):
        """Paths of every file under DATA_DIR/uploads (staged bytes of upload sessions)."""
        return sorted(glob.glob(os.path.join(self.data_dir, "uploads", "*")))


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
        """Runs rdg-clinic to completion. If the gateway dies on its own meanwhile, the client
        (which would retry for a long time) is killed and AssertionError raised at once."""
        argv = [os.path.join(BIN_DIR, "rdg-clinic"), *args]
        child = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                stdout, stderr = child.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                crash = self.gateway.crash_report()
                if crash or time.monotonic() > deadline:
                    child.kill()
                    stdout, stderr = child.communicate()
                    if crash:
                        raise AssertionError(f"rdg-clinic {args[:4]}... abandoned: {crash}")
                    raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
        proc = subprocess.CompletedProcess(argv, child.returncode, stdout, stderr)
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
    injected_clock = False  # True: the gateway's clock is shifted by set_clock_offset()

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="rdg-test-")
        self.pki = make_pki()
        # A gateway whose clock is shifted receives reports signed by today's clocks.
        extra = self.extra_config + ("\nmax_signing_clock_skew_seconds: 100000000\n"
                                     if self.injected_clock else "")
        self.gateway = Gateway(self.workdir, self.pki, extra)
        if self.injected_clock:
            self.offset_file = os.path.join(self.workdir, "clock-offset")
            self.set_clock_offset(0)
            self.gateway.extra_args = ["--clock-offset-file", self.offset_file]
        self.gateway.start()

    def set_clock_offset(self, seconds):
        """Moves the gateway's clock to real time + `seconds` (atomically)."""
        with open(self.offset_file + ".tmp", "w") as f:
            f.write(str(seconds))
        os.replace(self.offset_file + ".tmp", self.offset_file)

    def tearDown(self):
        crash = self.gateway.crash_report()
        self.gateway.stop()
        if self._outcome_ok() and not crash:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"\nkept {self.workdir} for inspection; gateway log:\n{self.gateway.log()[-4000:]}")
        if crash:  # a gateway crash fails the test even if its assertions happened to pass
            self.fail(crash)

    def assert_gateway_alive(self, gateway=None):
        crash = (gateway or self.gateway).crash_report()
        if crash:
            self.fail(crash)

    def _outcome_ok(self):
        """Whether this test has passed so far (failures and errors alike, Python 3.4 to 3.12+)."""
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return True
        if hasattr(outcome, "errors"):  # Python < 3.11: (test, exc_info or None) per test/cleanup
            return not any(exc for test, exc in outcome.errors if exc)
        if not getattr(outcome, "success", True):
            return False
        result = getattr(outcome, "result", None)
        for kind in ("errors", "failures", "unexpectedSuccesses"):
            for entry in getattr(result, kind, []) or []:
                test = entry[0] if isinstance(entry, tuple) else entry
                if test is self or getattr(test, "test_case", None) is self:
                    return False
        return True

    def clinic(self, name="clinic-a1", **kw):
        return Clinic(self.gateway, name, **kw)

    def credentials(self, name, pki=None):
        """gRPC channel credentials: NAME's certificate (of `pki`, default the shared PKI) and
        the platform CA."""
        import grpc
        pki = pki or self.pki
        return grpc.ssl_channel_credentials(
            root_certificates=read_bytes(os.path.join(self.pki, "ca.pem")),
            private_key=read_bytes(os.path.join(pki, f"{name}.key")),
            certificate_chain=read_bytes(os.path.join(pki, f"{name}.pem")))

    def channel(self, name, pki=None):
        """A gRPC channel to the gateway as NAME, for tests that speak the API directly."""
        import grpc
        return grpc.secure_channel(self.gateway.address, self.credentials(name, pki))

    def reader(self, name="reader-a-rad", **kw):
        return Reader(self.gateway, name, **kw)


class Reader(Clinic):
    """Runs rdg-reader as one certificate holder (NAME.pem/.key of `pki`, default the gateway's);
    the same environment as Clinic (RDG_GATEWAY, RDG_CA, RDG_CERT, RDG_KEY)."""

    program = "rdg-reader"

    def run(self, *args, timeout=300, check=False):
        proc = subprocess.run([os.path.join(BIN_DIR, self.program), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.program} {args} failed ({proc.returncode}): "
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args):
        return subprocess.Popen([os.path.join(BIN_DIR, self.program), *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def json(self, *args, expect_code=0, timeout=300):
        proc = self.run("--json", *args, timeout=timeout)
        if proc.returncode != expect_code:
            raise AssertionError(f"{self.program} {args}: exit {proc.returncode}, wanted "
                                 f"{expect_code}:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout)


_stubs_dir = None


def raw_stub(channel, method, streaming=False):
    """A call of `method` on a grpcio channel that sends and returns raw bytes (hand-made or
    hostile requests, answers read as bytes)."""
    make = channel.unary_stream if streaming else channel.unary_unary
    return make(method, request_serializer=lambda x: x, response_deserializer=lambda x: x)


def string_field(number, value):
    """One length-delimited protobuf field (enough for the single-string requests used here)."""
    data = value.encode()
    assert len(data) < 128
    return bytes([(number << 3) | 2, len(data)]) + data


def python_stubs():
    """Generates Python gRPC stubs from proto/ (Debian's protoc and gRPC Python plugin) once per
    process and puts them on sys.path; import them as rdg.v1.*_pb2 / *_pb2_grpc."""
    global _stubs_dir
    if _stubs_dir is None:
        import glob
        import sys
        out = tempfile.mkdtemp(prefix="rdg-pystubs-")
        proto = os.path.join(SOURCE_DIR, "proto")
        files = sorted(os.path.relpath(p, proto) for p in glob.glob(os.path.join(proto, "rdg/v1/*.proto")))
        subprocess.run(["protoc", f"--proto_path={proto}", f"--python_out={out}", f"--grpc_out={out}",
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", *files], check=True)
        atexit.register(shutil.rmtree, out, ignore_errors=True)
        sys.path.insert(0, out)
        _stubs_dir = out
    return _stubs_dir


def proc_status_kb(pid, field):
    """A numeric field of /proc/PID/status: VmRSS (resident) or VmHWM (peak resident) in KiB,
    Threads as a count."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_dicom(ds, path):
    """Writes a conformant DICOM file (preamble, DICM, file meta) with any pydicom version."""
    import pydicom
    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, write_like_original=False)
    return path


class Agent:
    """One `rdg-clinic agent` process (the clinic edge agent) with its own data dir and config,
    forwarding to `gateway` as clinic `name`; restartable on the same data."""

    def __init__(self, workdir, gateway, name="clinic-a1", ae_title="RDG-AGENT", extra="",
                 gateway_address=None, data_dir=None, dicom_options=""):
        self.gateway_address = gateway_address  # e.g. a FlakyProxy in front of the gateway
        self.workdir = os.path.join(workdir, f"agent-{name}")
        os.makedirs(self.workdir, exist_ok=True)
        self.gateway = gateway
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        self.inbox_dir = os.path.join(self.workdir, "inbox")
        self.ae_title = ae_title
        self.dicom_options = dicom_options  # more fields of the dicom { … } block
        self.config_path = os.path.join(self.workdir, "agent.textproto")
        self.log_path = os.path.join(self.workdir, "agent.log")
        self.name = name
        self.write_config(extra)
        self.proc = None
        self.dicom_port = self.hl7_port = self.dicom_tls_port = None

    def write_config(self, extra=""):
        pki = self.gateway.pki
        dicom_options = f" {self.dicom_options}" if self.dicom_options else ""
        with open(self.config_path, "w") as f:
            f.write(f"""
data_dir: "{self.data_dir}"
gateway {{
  address: "{self.gateway_address or self.gateway.address}"
  ca: "{pki}/ca.pem"
  certificate: "{pki}/{self.name}.pem"
  private_key: "{pki}/{self.name}.key"
}}
dicom {{ listen: "127.0.0.1:0" ae_title: "{self.ae_title}"{dicom_options} }}
hl7 {{ listen: "127.0.0.1:0" }}
inbox {{ dir: "inbox" poll_seconds: 1 }}
shutdown_grace_seconds: 5
""" + extra)
            if "forwarder" not in extra:
                f.write("forwarder { initial_backoff_ms: 50 max_backoff_ms: 1000 }\n")

    def start(self, timeout=30.0):
        ready = os.path.join(self.workdir, "ready.json")
        self.proc, text = start_process(
            [os.path.join(BIN_DIR, "rdg-clinic"), "agent", "--config", self.config_path,
             "--ready-file", ready], ready, self.log_path, "agent", timeout)
        info = json.loads(text)
        self.dicom_port, self.hl7_port = info["dicom_port"], info["hl7_port"]
        self.dicom_tls_port = info.get("dicom_tls_port", 0)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        elif self.proc:
            code = self.proc.returncode
        self.proc = None
        return code

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def status(self):
        proc = subprocess.run([os.path.join(BIN_DIR, "rdg-clinic"), "agent", "status", "--config",
                               self.config_path, "--json"], capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"agent status failed: {proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout)

    def wait_drained(self, expect_sent, timeout=120.0):
        """Polls `agent status` until the outbox is empty and `expect_sent` items went out."""
        def drained():
            s = self.status()
            return s if s["pending"] == 0 and s["sent"] >= expect_sent else None
        return wait_for(drained, timeout, interval=0.1, what=f"outbox drained ({expect_sent} sent)")

    def rows(self, sql, *params):
        """Rows of a read-only query against the agent's database (DATA/agent.db)."""
        db = sqlite3.connect(f"file:{os.path.join(self.data_dir, 'agent.db')}?mode=ro", uri=True,
                             timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def storescu(self, *files, calling="MODALITY1", called=None, check=True, options=()):
        """DCMTK's storescu sending `files` over one association (`options`: e.g. -xy to propose
        JPEG baseline for compressed files)."""
        env = dict(os.environ, TCP_NODELAY="1")
        # -R: propose what the files need, in their own transfer syntaxes (as devices do).
        proc = subprocess.run(["storescu", "-R", *options, "-aet", calling, "-aec", called or self.ae_title,
                               "127.0.0.1", str(self.dicom_port), *files],
                              capture_output=True, text=True, timeout=300, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"storescu failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def mllp_send(self, path):
        """python3-hl7's mllp_send with an MLLP-framed file; returns the ACKs it printed."""
        proc = subprocess.run(["/usr/bin/mllp_send", "-p", str(self.hl7_port), "--file", path,
                               "127.0.0.1"], capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"mllp_send failed: {proc.stderr.decode(errors='replace')}")
        return [a for a in proc.stdout.decode("utf-8", errors="replace").split("\n") if a.strip()]


def distinct_cts(folder, count, first=900, description=None):
    """`count` copies of pydicom's CT_small, each its own instance (a new SOP Instance UID ending
    in `first`, `first`+1, …) as a modality writes them; `description` as Study Description."""
    import pydicom
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        ds = pydicom.dcmread(os.path.join(PYDICOM_FILES, "CT_small.dcm"))
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{first + i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if description:
            ds.StudyDescription = description
        paths.append(write_dicom(ds, os.path.join(folder, f"ct{first + i}.dcm")))
    return paths


def dicom_dataset_bytes(data):
    """The bytes of a Part 10 file after its File Meta Information (what travels in C-STORE)."""
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise ValueError("not a Part 10 file with a group length")
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length:]


def without_trailing_padding(dataset):
    """`dataset` (explicit VR little endian) without a final Data Set Trailing Padding element
    (FFFC,FFFC): padding without meaning, which PS3.10 lets any application drop — DCMTK's
    storescu does."""
    at = dataset.rfind(b"\xfc\xff\xfc\xffOB\x00\x00")
    if at >= 0 and at + 12 + int.from_bytes(dataset[at + 8:at + 12], "little") == len(dataset):
        return dataset[:at]
    return dataset


def transfer_syntax(data):
    import io
    import pydicom
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta.TransferSyntaxUID)


class FlakyProxy:
    """A TCP proxy on 127.0.0.1:0 in front of `target_port`, for network faults on loopback.

    Each accepted connection gets a budget of client→server bytes from `budget()` (None: no
    limit); when it is spent the connection is cut (both sides reset). With `stall_every`, every
    n-th connection first stalls for `stall_seconds`. `cut_next(n)` arms a one-off cut after n
    more client→server bytes on the current connections. `blackhole()` makes every connection go
    silent without closing (a van out of coverage): bytes are read and dropped both ways.
    Counts bytes in each direction."""

    def __init__(self, target_port, budget=lambda: None, stall_every=0, stall_seconds=0.0):
        import socket
        import threading
        self._socket_mod = socket
        self.target_port = target_port
        self.budget = budget
        self.stall_every = stall_every
        self.stall_seconds = stall_seconds
        self.lock = threading.Lock()
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.cuts = 0
        self._armed = None
        self._blackhole = False
        self._live = []
        self._stop = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def cut_next(self, n):
        with self.lock:
            self._armed = n

    def blackhole(self):
        with self.lock:
            self._blackhole = True

    def close(self):
        self._stop.set()
        self._thread.join()
        self.listener.close()
        with self.lock:
            for pair in self._live:
                self._reset(*pair)

    def _reset(self, a, b):
        import struct
        for s in (a, b):
            try:  # SO_LINGER 0: close with RST, as a broken mobile link looks to both sides
                s.setsockopt(self._socket_mod.SOL_SOCKET, self._socket_mod.SO_LINGER,
                             struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass

    def _accept(self):
        import threading
        import time as _time
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            with self.lock:
                self.connections += 1
                n = self.connections
            if self.stall_every and n % self.stall_every == 0:
                _time.sleep(self.stall_seconds)
            try:
                server = self._socket_mod.create_connection(("127.0.0.1", self.target_port), 5)
            except OSError:
                client.close()
                continue
            state = {"budget": self.budget(), "dead": False}
            with self.lock:
                self._live.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, True, state),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False, state),
                             daemon=True).start()

    def _pump(self, src, dst, up, state):
        while not state["dead"]:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with self.lock:
                silent = self._blackhole
            if silent:
                # Swallowed, the end of a stream too: nothing reaches the other side, whose socket
                # stays open (until close()), as when a link drops without FIN or RST.
                if not data:
                    return
                continue
            if not data:
                break
            cut = False
            with self.lock:
                if up:
                    if state["budget"] is not None:
                        state["budget"] -= len(data)
                        cut = state["budget"] <= 0
                    if self._armed is not None:
                        self._armed -= len(data)
                        if self._armed <= 0:
                            self._armed, cut = None, True
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
            if cut:
                with self.lock:
                    self.cuts += 1
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        state["dead"] = True
        with self.lock:
            if (src, dst) in self._live or (dst, src) in self._live:
                pair = (src, dst) if (src, dst) in self._live else (dst, src)
                self._live.remove(pair)
                self._reset(*pair)


def _ul_item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _read_pdu(sock):
    """One DICOM UL PDU: (type, body)."""
    header = b""
    while len(header) < 6:
        chunk = sock.recv(6 - len(header))
        if not chunk:
            raise ConnectionError("the peer closed the association")
        header += chunk
    kind, _, length = struct.unpack(">BBI", header)
    body = bytearray()
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            raise ConnectionError("the peer closed the association mid-PDU")
        body += chunk
    return kind, bytes(body)


def _command_element(tag_element, value):
    if isinstance(value, int):
        data = struct.pack("<H", value)
    else:
        data = value.encode() + (b"\0" if len(value) % 2 else b"")
    return struct.pack("<HHI", 0, tag_element, len(data)) + data


def raw_cstore(port, called, calling, sop_class, sop_instance, dataset,
               transfer_syntax="1.2.840.10008.1.2.1", timeout=60):
    """A C-STORE made by hand (PS3.8 UL PDUs, PS3.7 command set): sends `dataset` (any bytes, as
    a device or an attacker would) and returns (status, error_comment) of the C-STORE-RSP, or
    (None, reason) when the association was refused or aborted. Needs no DICOM library, so it
    can send what storescu refuses to read."""
    import socket
    uid = lambda u: u.encode() + (b"\0" if len(u) % 2 else b"")
    pc = _ul_item(0x20, bytes([1, 0, 0, 0]) + _ul_item(0x30, uid(sop_class)) +
                  _ul_item(0x40, uid(transfer_syntax)))
    user = _ul_item(0x50, _ul_item(0x51, struct.pack(">I", 16384)) +
                    _ul_item(0x52, uid("1.2.826.0.1.3680043.2.1143")))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() +
            bytes(32) + _ul_item(0x10, uid("1.2.840.10008.3.1.1.1")) + pc + user)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">BBI", 0x01, 0, len(body)) + body)
        kind, answer = _read_pdu(sock)
        if kind != 0x02:
            return None, f"association not accepted (PDU type {kind})"
        # Presentation context 1 must be accepted (result 0) in the A-ASSOCIATE-AC.
        pos = 68
        while pos + 4 <= len(answer):
            item_type, item_len = answer[pos], struct.unpack(">H", answer[pos + 2:pos + 4])[0]
            if item_type == 0x21 and answer[pos + 6] != 0:
                return None, f"presentation context refused (result {answer[pos + 6]})"
            pos += 4 + item_len
        elements = [(0x0002, sop_class), (0x0100, 0x0001), (0x0110, 1), (0x0700, 0),
                    (0x0800, 0x0000), (0x1000, sop_instance)]
        command = b"".join(_command_element(t, v) for t, v in elements)
        command = struct.pack("<HHII", 0, 0, 4, len(command)) + command

        def pdata(control, fragment):
            pdv = struct.pack(">IBB", len(fragment) + 2, 1, control) + fragment
            sock.sendall(struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv)

        try:
            pdata(0x03, command)
            step = 16000
            for start in range(0, max(len(dataset), 1), step):
                last = start + step >= len(dataset)
                pdata(0x02 if last else 0x00, dataset[start:start + step])
            response = b""
            while True:
                kind, pdu = _read_pdu(sock)
                if kind == 0x07:
                    return None, "the association was aborted"
                if kind != 0x04:
                    continue
                pos, last = 0, False
                while pos < len(pdu):
                    length = struct.unpack(">I", pdu[pos:pos + 4])[0]
                    control = pdu[pos + 5]
                    response += pdu[pos + 6:pos + 4 + length]
                    last = last or (control & 0x01 and control & 0x02)
                    pos += 4 + length
                if last:
                    break
        except (ConnectionError, OSError) as e:
            return None, f"the association broke: {e}"
        status, comment, pos = None, "", 0
        while pos + 8 <= len(response):
            _, element, length = struct.unpack("<HHI", response[pos:pos + 8])
            value = response[pos + 8:pos + 8 + length]
            if element == 0x0900:
                status = struct.unpack("<H", value)[0]
            elif element == 0x0902:
                comment = value.rstrip(b"\0 ").decode(errors="replace")
            pos += 8 + length
        try:
            sock.sendall(struct.pack(">BBI", 0x05, 0, 4) + bytes(4))
            _read_pdu(sock)
        except (ConnectionError, OSError):
            pass
        return status, comment


class Balancer:
    """HAProxy as deploy/haproxy/rdg-gateways.cfg configures it, in front of `replicas`; clients
    (Clinic, Reader) take it for a gateway."""

    def __init__(self, workdir, pki, replicas):
        self.pki = pki
        self.replicas = replicas
        self.port = pg_cluster._free_port()
        pidfile = os.path.join(workdir, "haproxy.pid")
        with open(os.path.join(SOURCE_DIR, "deploy/haproxy/rdg-gateways.cfg")) as f:
            config = f.read().replace("@LISTEN@", self.address).replace("@PIDFILE@", pidfile)
        for i, g in enumerate(replicas):
            config += f"    server g{i + 1} {g.address} check port {g.monitoring_port}\n"
        path = os.path.join(workdir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        subprocess.run(["haproxy", "-c", "-q", "-f", path], check=True, timeout=30)
        self.proc = subprocess.Popen(["haproxy", "-W", "-f", path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._accepting, timeout=30, what="HAProxy listening")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accepting(self):
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def crash_report(self):
        """How a replica died on its own, if one did while the test did not kill it."""
        return next((r for r in (g.crash_report() for g in self.replicas) if r), None)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
