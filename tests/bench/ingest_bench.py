#!/usr/bin/python3
"""Ingest throughput benchmark: rdg-clinic -> rdg-gateway against DCMTK storescp and Orthanc.

NOT part of the pass/fail suite (CTest does not collect it). See tests/bench/README.md.

    /usr/bin/python3 tests/bench/ingest_bench.py [--small 2000] [--large 500] [--parallel 8]
                                                 [--tools rdg,storescp,orthanc] [--keep DIR]

--parallel takes a comma-separated list (e.g. 4,8,16): one RDG run per value; the storescp baseline
runs once per corpus (one association, one object in flight, as DICOM C-STORE works). --tools
chooses which of rdg, storescp and orthanc run.

Environment: RDG_BIN_DIR (default build/bin of this repository).

What is compared, and why it is not like for like:
  * RDG stores an object durably before it acknowledges it: the staged bytes are fsynced, renamed
    into the content-addressed blob store (directory fsynced) and indexed in SQLite
    (WAL, synchronous=FULL, group commit); the transport is gRPC over mTLS; the client hashes each
    file (SHA-256) before sending it.
  * storescp writes each object into the page cache (no fsync) and keeps no index; DICOM upper
    layer over plain TCP. Both DCMTK tools run with TCP_NODELAY=1 (without it Debian's DCMTK
    stalls on delayed ACKs and the baseline is meaningless).
  * storescp cannot bind to one address, so it runs in inetd mode (-id): this script listens on
    127.0.0.1, accepts storescu's connection (setting TCP_NODELAY on it) and hands the socket to
    `storescp -id`. Everything stays on loopback; the listener is up before storescu starts, so no
    readiness wait is needed, and the listener is closed after the first connection, so a second
    association would be refused (the run would then fail its file count).
  * Orthanc 1.10 (its defaults: each file fdatasync'ed, directory not synced; SQLite index in WAL
    mode with synchronous=NORMAL, so a commit is not flushed to disk) is measured three ways, each
    on a fresh server: C-STORE over 1 and over 4 associations (storescu, TCP_NODELAY=1 on both
    sides) and REST (4 threads, keep-alive connections, POST /instances). Orthanc cannot bind to
    one address either, so it runs in a network namespace of its own, created for it, in which
    loopback is the only interface; storescu joins it with nsenter, the REST threads with setns.
"""
import argparse
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("RDG_BIN_DIR", os.path.join(REPO, "build", "bin"))
os.environ.setdefault("RDG_SOURCE_DIR", REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402  (needs the environment above)

import pydicom  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
CORPUS_VERSION = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
STUDIES = 20
SERIES_PER_STUDY = 2

# corpus name -> (rows, columns): 16-bit pixels, so 160x160 = 51,200 bytes, 512x512 = 524,288 bytes.
GEOMETRY = {"small": (160, 160), "large": (512, 512)}

TOOLS = ("rdg", "storescp", "orthanc")

_children = []  # every process this script started, killed on the way out if still running


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Corpus


def corpus_dir(root, name, count):
    rows, cols = GEOMETRY[name]
    return os.path.join(root, f"corpus-{name}-{count}-{rows}x{cols}-v{CORPUS_VERSION}")


def build_corpus(root, name, count):
    """Writes `count` CT Image Storage Part 10 files (explicit VR little endian) in ~20 studies of
    2 series each, with fresh UIDs and random pixel data; reuses a complete earlier corpus."""
    path = corpus_dir(root, name, count)
    marker = path + ".complete"
    if os.path.exists(marker):
        with open(marker) as f:
            info = json.load(f)
        log(f"reusing corpus {path} ({info['files']} files, {info['bytes']} bytes)")
        return path, info
    shutil.rmtree(path, ignore_errors=True)
    rows, cols = GEOMETRY[name]
    started = time.monotonic()
    ds = pydicom.dcmread(CT_SMALL)
    ds.remove_private_tags()
    for tag in (0xFFFCFFFC, 0x00101002):  # trailing padding; Other Patient IDs Sequence
        if tag in ds:
            del ds[tag]
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.is_little_endian, ds.is_implicit_VR = True, False
    meta = ds.file_meta
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.ImplementationClassUID = generate_uid()
    total = 0
    studies = max(1, min(STUDIES, count))
    for study in range(studies):
        first, last = study * count // studies, (study + 1) * count // studies
        ds.StudyInstanceUID = generate_uid()
        ds.PatientID = f"BENCH{study:04d}"
        ds.PatientName = f"Bench^Patient{study:04d}"
        ds.AccessionNumber = f"ACC{study:06d}"
        ds.StudyID = str(study + 1)
        series_uids = [generate_uid() for _ in range(SERIES_PER_STUDY)]
        ds.FrameOfReferenceUID = generate_uid()
        for i in range(first, last):
            k = i - first
            series = k * SERIES_PER_STUDY // max(1, last - first)
            ds.SeriesInstanceUID = series_uids[series]
            ds.SeriesNumber = series + 1
            ds.InstanceNumber = k + 1
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.PixelData = os.urandom(rows * cols * 2)
            folder = os.path.join(path, f"study-{study:02d}", f"series-{series + 1}")
            os.makedirs(folder, exist_ok=True)
            out = os.path.join(folder, f"{k + 1:05d}.dcm")
            ds.save_as(out, write_like_original=False)
            total += os.path.getsize(out)
    info = {"name": name, "files": count, "bytes": total, "rows": rows, "columns": cols,
            "studies": studies, "mean_file_bytes": round(total / count)}
    with open(marker, "w") as f:
        json.dump(info, f)
    log(f"generated {path}: {count} files, {total / 1e6:.1f} MB in "
        f"{time.monotonic() - started:.1f} s")
    return path, info


# ------------------------------------------------------------------------------------------------
# /proc sampling


def proc_cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_stats(pid):
    """(tid, comm, fields after the name) of /proc/PID/task/TID/stat for every live thread."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        yield tid, raw[raw.index("(") + 1:raw.rindex(")")], raw.rsplit(")", 1)[1].split()


def thread_cpu(pid):
    """{tid: (comm, cpu seconds)} for every thread of a live process."""
    out = {}
    for tid, comm, fields in thread_stats(pid):
        out[tid] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def thread_cpu_delta(before, after, wall):
    """CPU used per thread name during the run: [(name, threads, seconds, share of one core)]."""
    by_name = {}
    for tid, (comm, cpu) in after.items():
        used = cpu - before.get(tid, (comm, 0.0))[1]
        n, s = by_name.get(comm, (0, 0.0))
        by_name[comm] = (n + 1, s + used)
    rows = [(name, n, round(s, 2), round(s / wall, 2)) for name, (n, s) in by_name.items()]
    return sorted(rows, key=lambda r: -r[2])


def with_exited(rows, total, wall):
    """Adds the CPU of threads that ended during the run (in the total, in no thread row)."""
    rest = total - sum(r[2] for r in rows)
    if rest > 0.005:
        rows = rows + [("(exited threads)", 0, round(rest, 2), round(rest / wall, 2))]
    return sorted(rows, key=lambda r: -r[2])


def vm_hwm_kb(pid):
    """Peak resident set of a live process (VmHWM), KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Polls VmHWM of processes every 20 ms while they live. (wait4's ru_maxrss is no use here:
    Linux carries the forking Python's high-water mark over the exec into the child's figure.)"""

    def __init__(self):
        self.pids, self.peak_kb = [], {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def watch(self, pid):
        self.pids.append(pid)

    def _loop(self):
        while not self._stop.wait(0.02):
            for pid in list(self.pids):
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), vm_hwm_kb(pid))

    def stop(self):
        self._stop.set()
        self._thread.join()

    def mb(self, pid):
        return round(self.peak_kb.get(pid, 0) / 1024, 1)


def all_process_cpu():
    """{pid: (comm, cpu seconds)} for every process on the machine (kernel threads included)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[1].split()
        out[int(pid)] = (raw[raw.index("(") + 1:raw.rindex(")")],
                         (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def children_of(pid):
    """Pids of the live processes whose parent is `pid` (the gateway's rdg-parser processes)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(entry))
    return out


def busiest_others(before, after, exclude):
    """The processes other than `exclude` that used the most CPU between two snapshots."""
    used = []
    for pid, (comm, cpu) in after.items():
        if pid in exclude:
            continue
        delta = cpu - before.get(pid, (comm, 0.0))[1]
        if delta >= 0.05:
            used.append((comm, round(delta, 2)))
    return sorted(used, key=lambda x: -x[1])[:3]


def system_cpu():
    """Machine-wide jiffies: (busy, iowait, total) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return user + nice + system + irq + softirq + steal, iowait, total


def system_cpu_delta(before, after):
    busy, iowait, total = (a - b for a, b in zip(after, before))
    cores = os.cpu_count() or 1
    total = max(total, 1)
    return {"machine_busy_pct": round(100 * busy / total, 1),
            "machine_iowait_pct": round(100 * iowait / total, 1),
            "machine_busy_cpu_seconds": round(busy / CLK_TCK, 2),
            "machine_cores": cores}


def add_other_cpu(r):
    """CPU used during the run by processes other than the server and the client under test
    (other sessions, this script): non-zero figures mean the machine was shared."""
    r["other_cpu_seconds"] = round(max(0.0, r["machine_busy_cpu_seconds"] - r["server_cpu_seconds"]
                                       - r["client_cpu_seconds"]), 2)
    return r


def run_timed(argv, env, stdout_path, stderr_path, peaks, timeout, watchdog=None):
    """Runs argv to completion; returns (exit code, wall seconds, rusage, pid, abort reason).

    The command is killed if it outlives `timeout` seconds or if `watchdog()` (polled every
    50 ms) returns a reason, e.g. the server it talks to has died."""
    codes, wall, usages, pids, aborted = run_timed_all([(argv, stdout_path, stderr_path)], env,
                                                       peaks, timeout, watchdog)
    return codes[0], wall, usages[0], pids[0], aborted


def run_timed_all(commands, env, peaks, timeout, watchdog=None):
    """Starts every (argv, stdout path, stderr path) at once and waits for all of them; returns
    (exit codes, wall seconds from the first start to the last exit, rusages, pids, abort reason).

    Every command still running is killed if they outlive `timeout` seconds or if `watchdog()`
    (polled every 50 ms) returns a reason, e.g. the server they talk to has died."""
    lock, done, aborted, procs = threading.Lock(), threading.Event(), [], []
    with contextlib.ExitStack() as files:
        t0 = time.monotonic()
        for argv, stdout_path, stderr_path in commands:
            out = files.enter_context(open(stdout_path, "wb"))
            err = files.enter_context(open(stderr_path, "wb"))
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL)
            _children.append(proc)
            peaks.watch(proc.pid)
            procs.append(proc)

        def guard():
            while not done.wait(0.05):
                reason = watchdog() if watchdog else None
                if reason is None and time.monotonic() - t0 > timeout:
                    reason = f"timed out after {timeout} s"
                if reason:
                    with lock:
                        if not done.is_set():
                            aborted.append(reason)
                            for proc in procs:
                                if proc.returncode is None:
                                    proc.kill()
                    return

        guard_thread = threading.Thread(target=guard, daemon=True)
        guard_thread.start()
        usages = []
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            with lock:
                proc.returncode = os.waitstatus_to_exitcode(status)
            usages.append(usage)
        wall = time.monotonic() - t0
        with lock:
            done.set()
        guard_thread.join()
    return ([p.returncode for p in procs], wall, usages, [p.pid for p in procs],
            (aborted[0] if aborted else None))


def signal_name(code):
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def count_files(root):
    return sum(len(files) for _, _, files in os.walk(root))


# ------------------------------------------------------------------------------------------------
# RDG


def run_rdg(corpus, info, parallel, pki, workroot, timeout, gateway_config=""):
    wd = tempfile.mkdtemp(prefix=f"rdg-{info['name']}-p{parallel}-", dir=workroot)
    result = {"corpus": info["name"], "tool": "rdg", "parallel": parallel,
              "instances": info["files"], "bytes": info["bytes"]}
    gateway = harness.Gateway(wd, pki, gateway_config)
    try:
        gateway.start()
    finally:
        if gateway.proc is not None:
            _children.append(gateway.proc)
    gateway_proc = gateway.proc
    try:
        pid = gateway_proc.pid
        clinic = harness.Clinic(gateway, "clinic-a1")
        os.sync()  # earlier runs' dirty pages must not be flushed inside this run
        procs0 = all_process_cpu()
        threads0, cpu0, sys0 = thread_cpu(pid), proc_cpu_seconds(pid), system_cpu()
        argv = [os.path.join(harness.BIN_DIR, "rdg-clinic"), "--json", "upload",
                "--parallel", str(parallel), corpus]

        def gateway_died():
            code = gateway_proc.poll()
            return None if code is None else f"the gateway died ({signal_name(code)})"

        peaks = PeakRss()
        try:
            code, wall, usage, client_pid, aborted = run_timed(
                argv, clinic.env, os.path.join(wd, "clinic.json"),
                os.path.join(wd, "clinic.stderr"), peaks, timeout, gateway_died)
        finally:
            peaks.stop()
        aborted = aborted or gateway_died()
        if not aborted:
            sys1, cpu1, threads1 = system_cpu(), proc_cpu_seconds(pid), thread_cpu(pid)
            procs1 = all_process_cpu()
            # The gateway parses in its rdg-parser processes: their CPU is the server's.
            parsers = children_of(pid)
            parser_cpu = sum(procs1[p][1] - procs0.get(p, ("", 0.0))[1] for p in parsers
                             if p in procs1)
            others = busiest_others(procs0, procs1, {pid, client_pid, os.getpid()} | parsers)
            hwm = vm_hwm_kb(pid)  # the gateway's peak RSS, read right before stopping it
    finally:
        gateway.stop()
    if aborted:
        stored = count_files(os.path.join(wd, "var", "blobs"))
        result["error"] = (f"{aborted} after {wall:.1f} s; {stored} of {info['files']} objects "
                           f"were stored (gateway.log in the run's directory)")
        return result, wd
    with open(os.path.join(wd, "clinic.json")) as f:
        raw = f.read()
    try:
        report = json.loads(raw)
    except ValueError:
        result["error"] = f"rdg-clinic {signal_name(code)} without JSON; see {wd}/clinic.stderr"
        return result, wd
    files = report["files"]
    ok = [f for f in files if f["ok"] and not f.get("duplicate")]
    if code != 0 or len(files) != info["files"] or len(ok) != info["files"]:
        bad = [f for f in files if not f["ok"]][:3]
        result["error"] = (f"rdg-clinic {signal_name(code)}: {len(ok)} of {info['files']} files "
                           f"stored as new objects ({len(files)} reported); first failures: {bad}")
        return result, wd
    if len(report["exams"]) != info["studies"]:
        result["error"] = f"expected {info['studies']} exams, got {len(report['exams'])}"
        return result, wd
    result.update({
        "seconds": round(wall, 3),
        "client_reported_seconds": round(report["seconds"], 3),
        "server_peak_rss_mb": round(hwm / 1024, 1),
        "server_cpu_seconds": round(cpu1 - cpu0 + parser_cpu, 2),
        "parser_cpu_seconds": round(parser_cpu, 2),
        "client_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "client_peak_rss_mb": peaks.mb(client_pid),
        "gateway_threads": with_exited(thread_cpu_delta(threads0, threads1, wall),
                                       cpu1 - cpu0, wall)[:6],
        "busiest_other_processes": others,
    })
    result.update(system_cpu_delta(sys0, sys1))
    return add_other_cpu(result), wd


# ------------------------------------------------------------------------------------------------
# DCMTK baseline


def run_storescp(corpus, info, workroot, timeout):
    wd = tempfile.mkdtemp(prefix=f"storescp-{info['name']}-", dir=workroot)
    result = {"corpus": info["name"], "tool": "storescp", "parallel": 1,
              "instances": info["files"], "bytes": info["bytes"]}
    out_dir = os.path.join(wd, "out")
    os.makedirs(out_dir)
    env = dict(os.environ, TCP_NODELAY="1")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    scp = {}

    def accept_one():
        # Accepts storescu's association and hands the socket to `storescp -id` (inetd mode).
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        finally:
            listener.close()  # a second association would be refused
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with open(os.path.join(wd, "storescp.log"), "wb") as err:
                proc = subprocess.Popen(
                    ["storescp", "--inetd", "+xa", "-od", out_dir, "-fe", ".dcm"],
                    stdin=conn.fileno(), stdout=subprocess.DEVNULL, stderr=err, env=env)
            _children.append(proc)
            peaks.watch(proc.pid)
            scp["proc"] = proc

    peaks = PeakRss()
    acceptor = threading.Thread(target=accept_one, daemon=True)
    acceptor.start()
    os.sync()
    procs0 = all_process_cpu()
    sys0 = system_cpu()
    argv = ["storescu", "--scan-directories", "--recurse", "-aet", "BENCH", "-aec", "STORESCP",
            "127.0.0.1", str(port), corpus]
    try:
        code, wall, usage, client_pid, aborted = run_timed(
            argv, env, os.path.join(wd, "storescu.out"), os.path.join(wd, "storescu.err"), peaks,
            timeout)
    finally:
        sys1 = system_cpu()
        procs1 = all_process_cpu()
        if acceptor.is_alive():  # storescu never connected
            listener.shutdown(socket.SHUT_RDWR)
        acceptor.join(5)
    proc = scp.get("proc")
    scp_usage = None
    if proc is not None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid, status, scp_usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.01)
        else:
            proc.kill()
            _, status, scp_usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            aborted = aborted or "storescp did not exit after the association ended"
    peaks.stop()
    stored = sum(1 for n in os.listdir(out_dir) if n.endswith(".dcm"))
    if aborted or proc is None or code != 0 or stored != info["files"]:
        result["error"] = (f"storescu {signal_name(code)}{', ' + aborted if aborted else ''}; "
                           f"storescp stored {stored} of {info['files']} files; see {wd}")
        return result, wd
    result.update({
        "seconds": round(wall, 3),
        "server_peak_rss_mb": peaks.mb(proc.pid),
        "server_cpu_seconds": round(scp_usage.ru_utime + scp_usage.ru_stime, 2),
        "client_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "client_peak_rss_mb": peaks.mb(client_pid),
        "busiest_other_processes": busiest_others(procs0, procs1,
                                                  {proc.pid, client_pid, os.getpid()}),
    })
    result.update(system_cpu_delta(sys0, sys1))
    return add_other_cpu(result), wd


# ------------------------------------------------------------------------------------------------
# Orthanc

# (mode, parallelism) of the Orthanc measurements, each on a fresh server.
ORTHANC_RUNS = (("cstore", 1), ("cstore", 4), ("rest", 4))
ORTHANC_AET = "ORTHANC"
# Orthanc's defaults: it has a network namespace of its own, in which nothing else listens, so
# these ports are free without a search (and without the race of picking a free port first).
ORTHANC_DICOM_PORT, ORTHANC_HTTP_PORT = 4242, 8042
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def orthanc_binary():
    """Path of the Orthanc server (Debian installs it in /usr/sbin), or None."""
    return shutil.which("Orthanc", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def enter_netns(fd):
    """Moves the calling thread, and only it, into the network namespace open as `fd`."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def split_files(root, parts):
    """Every file under `root`, sorted, cut into `parts` disjoint runs of consecutive files (so
    each part holds whole studies, as a modality sends them)."""
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(root) for n in names)
    return [files[i * len(files) // parts:(i + 1) * len(files) // parts] for i in range(parts)]


class Orthanc:
    """Orthanc with its default SQLite index and storage area in `wd`, in a network namespace of
    its own in which loopback is the only interface (Orthanc 1.10 listens on every address and
    has no option to bind to one). The namespace ends with the server."""

    def __init__(self, wd, binary):
        self.wd, self.binary = wd, binary
        self.log_path = os.path.join(wd, "orthanc.log")
        self.proc, self.netns_fd, self.version = None, None, None

    def start(self, timeout=60):
        """Starts the server and waits until GET /system answers (the DICOM listener is up by
        then: Orthanc starts it first). Raises RuntimeError if it does not come up."""
        db = os.path.join(self.wd, "db")
        config = {"Name": "rdg-ingest-bench", "StorageDirectory": db, "IndexDirectory": db,
                  "DicomAet": ORTHANC_AET, "DicomPort": ORTHANC_DICOM_PORT,
                  "HttpPort": ORTHANC_HTTP_PORT, "DicomCheckCalledAet": False,
                  "DicomAlwaysAllowStore": True, "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "Plugins": []}
        config_path = os.path.join(self.wd, "orthanc.json")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=1)
        # unshare and sh exec, so the pid is Orthanc's. TCP_NODELAY=1 for its DCMTK, as storescp.
        argv = ["unshare", "--net", "--", "/bin/sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                self.binary, config_path]
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(argv, env=dict(os.environ, TCP_NODELAY="1"),
                                         stdin=subprocess.DEVNULL, stdout=log_file,
                                         stderr=subprocess.STDOUT)
        _children.append(self.proc)
        deadline = time.monotonic() + timeout
        binary = os.path.realpath(self.binary)
        while not self._exe_is(binary):  # until then, the pid may still be in our namespace
            self._check_alive("starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start within {timeout} s; see {self.log_path}")
            time.sleep(0.01)
        self.netns_fd = os.open(f"/proc/{self.proc.pid}/ns/net", os.O_RDONLY)
        self.version = self.in_netns(self._wait_ready, deadline).get("Version")

    def _exe_is(self, path):
        try:
            return os.readlink(f"/proc/{self.proc.pid}/exe") == path
        except OSError:
            return False

    def _check_alive(self, doing):
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"Orthanc ended ({signal_name(code)}) while {doing}; "
                               f"see {self.log_path}")

    def _wait_ready(self, deadline):
        """GET /system until it answers; returns its answer."""
        while True:
            try:
                return self.get("/system", timeout=1)
            except (OSError, http.client.HTTPException):
                pass
            self._check_alive("starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not answer GET /system in time; "
                                   f"see {self.log_path}")
            time.sleep(0.05)

    def died(self):
        """Why the server is gone, or None while it runs (a watchdog for run_timed_all)."""
        code = self.proc.poll()
        return None if code is None else f"Orthanc died ({signal_name(code)})"

    def in_netns(self, fn, *args):
        """fn(*args), called in a new thread that has entered the server's namespace."""
        out = {}

        def body():
            try:
                enter_netns(self.netns_fd)
                out["value"] = fn(*args)
            except BaseException as e:  # handed to the calling thread
                out["error"] = e

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    def get(self, path, timeout=10):
        """GET path as JSON; only from a thread inside the server's namespace."""
        conn = http.client.HTTPConnection("127.0.0.1", ORTHANC_HTTP_PORT, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise http.client.HTTPException(f"GET {path}: HTTP {resp.status}")
            return json.loads(body)
        finally:
            conn.close()

    def count_instances(self):
        return self.in_netns(self.get, "/statistics")["CountInstances"]

    def nsenter(self, argv):
        """argv run inside the server's namespace (nsenter execs it: same pid, no fork)."""
        return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "--"] + argv

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL if the server is still running after `timeout` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None


def storescu_to_orthanc(orthanc, corpus, parallel, wd, peaks, timeout):
    """C-STORE of the corpus: one storescu (one association) with --scan-directories, or
    `parallel` storescu processes at once, each sending its part of the files on one association.
    Returns (wall seconds, client CPU seconds, client pids, error or None)."""
    storescu = ["storescu", "-aet", "BENCH", "-aec", ORTHANC_AET]
    peer = ["127.0.0.1", str(ORTHANC_DICOM_PORT)]
    if parallel == 1:
        lists = [storescu + ["--scan-directories", "--recurse"] + peer + [corpus]]
    else:
        lists = [storescu + peer + files for files in split_files(corpus, parallel)]
    commands = [(orthanc.nsenter(argv), os.path.join(wd, f"storescu-{i}.out"),
                 os.path.join(wd, f"storescu-{i}.err")) for i, argv in enumerate(lists)]
    codes, wall, usages, pids, aborted = run_timed_all(
        commands, dict(os.environ, TCP_NODELAY="1"), peaks, timeout, orthanc.died)
    cpu = sum(u.ru_utime + u.ru_stime for u in usages)
    failed = [f"storescu {i} {signal_name(c)}" for i, c in enumerate(codes) if c != 0]
    return wall, cpu, pids, aborted or "; ".join(failed) or None


def post_to_orthanc(orthanc, corpus, parallel, timeout):
    """POST /instances of the corpus from `parallel` threads at once, each with one keep-alive
    connection and its part of the files. Every answer must say Status "Success" (a new instance).
    Returns (wall seconds, client CPU seconds, error or None); the client CPU is the sum of the
    posting threads' own CPU time (time.thread_time, reading the files included)."""
    deadline = time.monotonic() + timeout
    outcomes = {}

    def post_all(i, files):
        cpu0, error = time.thread_time(), None
        try:
            enter_netns(orthanc.netns_fd)
            conn = http.client.HTTPConnection("127.0.0.1", ORTHANC_HTTP_PORT, timeout=60)
            for path in files:
                if time.monotonic() > deadline:
                    error = f"timed out after {timeout} s"
                    break
                with open(path, "rb") as f:
                    body = f.read()
                conn.request("POST", "/instances", body=body,
                             headers={"Content-Type": "application/dicom"})
                resp = conn.getresponse()
                answer = resp.read()
                if resp.status != 200 or json.loads(answer).get("Status") != "Success":
                    error = f"POST {path}: HTTP {resp.status} {answer[:200]!r}"
                    break
            conn.close()
        except Exception as e:  # whatever it is, the run has failed: report it
            error = f"{type(e).__name__}: {e}"
        outcomes[i] = (time.thread_time() - cpu0, error)

    # Daemon threads: an interrupted run must not wait for them on the way out.
    threads = [threading.Thread(target=post_all, args=(i, files), daemon=True)
               for i, files in enumerate(split_files(corpus, parallel))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    errors = [f"thread {i}: {e}" for i, (_, e) in sorted(outcomes.items()) if e]
    return wall, sum(cpu for cpu, _ in outcomes.values()), "; ".join(errors) or None


def run_orthanc(corpus, info, mode, parallel, binary, workroot, timeout):
    """One Orthanc measurement on a fresh server in a fresh directory: mode "cstore" (storescu)
    or "rest" (POST /instances), `parallel` associations or connections. The run counts only if
    the server then holds exactly the corpus's instances."""
    tool = f"orthanc-{mode}"
    wd = tempfile.mkdtemp(prefix=f"{tool}-{info['name']}-p{parallel}-", dir=workroot)
    result = {"corpus": info["name"], "tool": tool, "parallel": parallel,
              "instances": info["files"], "bytes": info["bytes"]}
    orthanc = Orthanc(wd, binary)
    try:
        try:
            orthanc.start()
        except (RuntimeError, OSError, http.client.HTTPException) as e:
            result["error"] = str(e)
            return result, wd
        pid = orthanc.proc.pid
        peaks = PeakRss()
        peaks.watch(pid)
        os.sync()  # earlier runs' dirty pages must not be flushed inside this run
        procs0, cpu0, sys0 = all_process_cpu(), proc_cpu_seconds(pid), system_cpu()
        try:
            if mode == "rest":
                wall, client_cpu, error = post_to_orthanc(orthanc, corpus, parallel, timeout)
                client_pids = []
            else:
                wall, client_cpu, client_pids, error = storescu_to_orthanc(
                    orthanc, corpus, parallel, wd, peaks, timeout)
        finally:
            peaks.stop()
        error = "; ".join(e for e in (orthanc.died(), error) if e)
        if not error:
            sys1, cpu1, procs1 = system_cpu(), proc_cpu_seconds(pid), all_process_cpu()
            try:
                stored = orthanc.count_instances()
            except (OSError, ValueError, http.client.HTTPException) as e:
                stored = f"? ({type(e).__name__} from GET /statistics: {e})"
            if stored != info["files"]:
                error = f"Orthanc holds {stored} of {info['files']} instances"
    finally:
        orthanc.stop()
    if error:
        result["error"] = f"{error}; see {wd}"
        return result, wd
    result.update({
        "seconds": round(wall, 3),
        "orthanc_version": orthanc.version,
        "server_peak_rss_mb": peaks.mb(pid),
        "server_cpu_seconds": round(cpu1 - cpu0, 2),
        "client_cpu_seconds": round(client_cpu, 2),
        "busiest_other_processes": busiest_others(procs0, procs1,
                                                  {pid, os.getpid(), *client_pids}),
    })
    if client_pids:
        result["client_peak_rss_mb"] = round(sum(peaks.mb(p) for p in client_pids), 1)
    result.update(system_cpu_delta(sys0, sys1))
    return add_other_cpu(result), wd


# ------------------------------------------------------------------------------------------------
# Report


def add_rates(r):
    if "seconds" in r:
        r["instances_per_s"] = round(r["instances"] / r["seconds"], 1)
        r["mb_per_s"] = round(r["bytes"] / 1e6 / r["seconds"], 1)
    return r


def print_table(results):
    head = ("corpus", "tool", "par", "inst", "seconds", "inst/s", "MB/s", "srv RSS MB",
            "srv CPU s", "cli CPU s", "other CPU s", "busy %", "iowait %")
    fmt = "{:<6} {:<14} {:>3} {:>5} {:>8} {:>8} {:>7} {:>10} {:>9} {:>9} {:>11} {:>6} {:>8}"
    print(fmt.format(*head))
    for r in results:
        if "error" in r:
            print(f"{r['corpus']:<6} {r['tool']:<14} {r['parallel']:>3} {r['instances']:>5}  "
                  f"FAILED: {r['error']}")
            continue
        print(fmt.format(r["corpus"], r["tool"], r["parallel"], r["instances"],
                         f"{r['seconds']:.2f}", f"{r['instances_per_s']:.0f}",
                         f"{r['mb_per_s']:.1f}", f"{r['server_peak_rss_mb']:.1f}",
                         f"{r['server_cpu_seconds']:.2f}", f"{r['client_cpu_seconds']:.2f}",
                         f"{r['other_cpu_seconds']:.2f}", f"{r['machine_busy_pct']:.0f}",
                         f"{r['machine_iowait_pct']:.0f}"))


def ratios(results):
    """For each RDG run: its instances/s and MB/s over storescp's and over the best Orthanc run's
    (by instances/s) of the same corpus, with the Orthanc mode that was best."""
    ok = [r for r in results if "error" not in r]
    base = {r["corpus"]: r for r in ok if r["tool"] == "storescp"}
    best = {}
    for r in ok:
        if r["tool"].startswith("orthanc-"):
            seen = best.get(r["corpus"])
            if seen is None or r["instances_per_s"] > seen["instances_per_s"]:
                best[r["corpus"]] = r
    out = []
    for r in ok:
        if r["tool"] != "rdg":
            continue
        q = {"corpus": r["corpus"], "parallel": r["parallel"]}
        b = base.get(r["corpus"])
        if b is not None:
            q["instances_per_s"] = round(r["instances_per_s"] / b["instances_per_s"], 3)
            q["mb_per_s"] = round(r["mb_per_s"] / b["mb_per_s"], 3)
        o = best.get(r["corpus"])
        if o is not None:
            q["orthanc"] = {
                "best": f"{o['tool']} --parallel {o['parallel']}",
                "instances_per_s": round(r["instances_per_s"] / o["instances_per_s"], 3),
                "mb_per_s": round(r["mb_per_s"] / o["mb_per_s"], 3)}
        out.append(q)
    return out


def file_creation_probe(root, files=500):
    """Microseconds to create (and close) one empty file in a new directory under `root`, the
    median of `files`. The cost of a new inode depends on the file system's recent history
    (ext4 without a journal skips inodes freed in the last seconds, and was seen here taking
    20 us in one directory and 420 us in another); every tool here creates a file per object."""
    d = tempfile.mkdtemp(prefix="create-probe-", dir=root)
    took = []
    for i in range(files):
        t0 = time.perf_counter()
        os.close(os.open(os.path.join(d, f"{i}"), os.O_CREAT | os.O_WRONLY, 0o600))
        took.append(time.perf_counter() - t0)
    took.sort()
    return round(took[len(took) // 2] * 1e6, 1)


def report_run(r, wd, keep):
    """Logs a run's outcome. Its directory stays until the end of the script (removed with the
    work root): deleting thousands of files right before the next run would make that run's
    file creations slower (ext4 skips inodes freed in the last seconds while it allocates, which
    this machine's journal-less ext4 was seen to spend up to 0.4 ms per new file on)."""
    if "error" in r:
        log(f"  FAILED: {r['error']}")
        if not keep:  # keep the run's logs (not its data) outside the work dir
            kept = tempfile.mkdtemp(prefix=f"rdg-ingest-bench-failed-{os.path.basename(wd)}-")
            for name in os.listdir(wd):
                if os.path.isfile(os.path.join(wd, name)):
                    shutil.copy(os.path.join(wd, name), kept)
            log(f"  logs kept in {kept}")
    else:
        log(f"  {r['seconds']:.2f} s, {r['instances_per_s']:.0f} inst/s")


def check_tools(tools):
    """Exits with what to install if a chosen tool is missing; returns Orthanc's path if it runs."""
    if {"storescp", "orthanc"} & set(tools):
        for tool in ("storescu", "storescp"):
            if not shutil.which(tool):
                sys.exit(f"{tool} not found: apt-get install dcmtk")
    if "rdg" in tools:
        for tool in ("rdg-gateway", "rdg-clinic"):
            if not os.access(os.path.join(harness.BIN_DIR, tool), os.X_OK):
                sys.exit(f"{harness.BIN_DIR}/{tool} not found: build first or set RDG_BIN_DIR")
    if "orthanc" not in tools:
        return None
    binary = orthanc_binary()
    if binary is None:
        sys.exit("Orthanc not found: run deploy/install-deps.sh (Debian package orthanc)")
    for tool, package in (("unshare", "util-linux"), ("nsenter", "util-linux"),
                          ("ip", "iproute2")):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (needed for Orthanc's network namespace): "
                     f"apt-get install {package}")
    if os.geteuid() != 0:
        sys.exit("Orthanc runs in a network namespace of its own, which needs root; "
                 "run as root or leave orthanc out of --tools")
    return binary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=2000, help="instances of ~53 KB (0: skip)")
    ap.add_argument("--large", type=int, default=500, help="instances of ~525 KB (0: skip)")
    ap.add_argument("--parallel", default="8",
                    help="rdg-clinic --parallel; a comma-separated list runs each value")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR and keep it (corpus, gateway data and logs, storescp "
                         "output); a corpus already in DIR with the same sizes is reused")
    ap.add_argument("--attempts", type=int, default=1,
                    help="run a failed RDG measurement again on a fresh gateway, up to this many "
                         "times in all; failed attempts are reported (default 1)")
    ap.add_argument("--gateway-config", default="", metavar="TEXTPROTO",
                    help="added to the gateway's configuration, e.g. 'ingest_threads: 32'")
    ap.add_argument("--timeout", type=float, default=900,
                    help="kill a client that runs longer than this many seconds (default 900)")
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help=f"comma-separated tools to measure (default {','.join(TOOLS)})")
    args = ap.parse_args()
    parallels = [int(p) for p in args.parallel.split(",") if p.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if not tools or set(tools) - set(TOOLS):
        ap.error(f"--tools {args.tools!r}: choose from {', '.join(TOOLS)}")
    orthanc = check_tools(tools)

    if args.keep:
        workroot = os.path.abspath(args.keep)
        os.makedirs(workroot, exist_ok=True)
    else:
        workroot = tempfile.mkdtemp(prefix="rdg-ingest-bench-")
    pki = None
    results = []
    corpora = []
    create_us = file_creation_probe(workroot)
    log(f"creating a file in {workroot} takes {create_us} us (median of 500)")
    try:
        for name, count in (("small", args.small), ("large", args.large)):
            if count > 0:
                corpora.append((name, *build_corpus(workroot, name, count)))
        if "rdg" in tools:
            pki = harness.make_pki()
        for name, path, info in corpora:
            for parallel in (parallels if "rdg" in tools else []):
                log(f"{name}: rdg-clinic --parallel {parallel} ...")
                failures = []
                for _ in range(args.attempts):
                    r, wd = run_rdg(path, info, parallel, pki, workroot, args.timeout,
                                    args.gateway_config)
                    report_run(add_rates(r), wd, args.keep)
                    if "error" not in r:
                        break
                    failures.append(r["error"])
                if failures and "error" not in r:
                    r["failed_attempts"] = failures
                results.append(add_rates(r))
            if "storescp" in tools:
                log(f"{name}: storescu -> storescp ...")
                r, wd = run_storescp(path, info, workroot, args.timeout)
                results.append(add_rates(r))
                report_run(r, wd, args.keep)
            for mode, parallel in (ORTHANC_RUNS if orthanc else ()):
                log(f"{name}: orthanc-{mode} --parallel {parallel} ...")
                r, wd = run_orthanc(path, info, mode, parallel, orthanc, workroot, args.timeout)
                results.append(add_rates(r))
                report_run(r, wd, args.keep)
    finally:
        for proc in _children:
            if proc.returncode is None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
            if pki:
                shutil.rmtree(pki, ignore_errors=True)
        elif pki:
            log(f"kept {workroot} (dev PKI in {pki})")

    print()
    print_table(results)
    print()
    for q in ratios(results):
        if "instances_per_s" in q:
            print(f"RDG/storescp {q['corpus']:<5} --parallel {q['parallel']:<3} "
                  f"instances/s x{q['instances_per_s']:.2f}  MB/s x{q['mb_per_s']:.2f}")
        if "orthanc" in q:
            o = q["orthanc"]
            print(f"RDG/Orthanc  {q['corpus']:<5} --parallel {q['parallel']:<3} "
                  f"instances/s x{o['instances_per_s']:.2f}  MB/s x{o['mb_per_s']:.2f}  "
                  f"(best Orthanc: {o['best']})")
    for r in results:
        if "error" not in r and r["other_cpu_seconds"] >= 0.1 * r["seconds"]:
            top = ", ".join(f"{c} {t:.2f} s" for c, t in r.get("busiest_other_processes", []))
            print(f"warning: {r['corpus']} {r['tool']} --parallel {r['parallel']}: "
                  f"{r['other_cpu_seconds']:.2f} CPU s used by other processes "
                  f"({top or 'short-lived ones or the kernel'}); the machine was not quiet")
        for e in r.get("failed_attempts", []):
            print(f"note: {r['corpus']} --parallel {r['parallel']} succeeded after a failed "
                  f"attempt: {e}")
    print()
    for r in results:
        if r["tool"] == "rdg" and "error" not in r:
            threads = ", ".join(f"{name}" + (f" x{n}" if n > 1 else "") + f" {cpu:.2f} s"
                                for name, n, cpu, _ in r["gateway_threads"] if cpu > 0)
            print(f"gateway CPU by thread, {r['corpus']} --parallel {r['parallel']}: {threads}")
    if "rdg" in tools:
        print()
    print("RDG acknowledges an object only once it is durable (fsynced, linked into the blob")
    print("store, indexed in SQLite with synchronous=FULL) and talks gRPC over mTLS; storescp")
    print("writes into the page cache without fsync and keeps no index; Orthanc (defaults)")
    print("fdatasyncs each file, not its directory, and commits its SQLite index (WAL) with")
    print("synchronous=NORMAL, i.e. without flushing the commit. srv = gateway (with its")
    print("rdg-parser processes), storescp or Orthanc; cli = rdg-clinic, storescu (all of them)")
    print("or this script's posting threads (orthanc-rest); other CPU = everything else on the")
    print("machine during the timed command (should be ~0, otherwise the machine was shared);")
    print("busy/iowait: the whole machine.")
    print(f"Creating one empty file in the work directory took {create_us} us (median); every")
    print("tool creates a file per object, so a slow file system slows them all.")
    print()
    summary = {
        "bench": "ingest", "cores": os.cpu_count(), "tools": tools,
        "file_creation_us": create_us,
        "corpora": {info["name"]: {k: info[k] for k in ("files", "bytes", "mean_file_bytes",
                                                         "rows", "columns", "studies")}
                    for _, _, info in corpora},
        "results": results, "ratios": ratios(results),
    }
    print(json.dumps(summary, separators=(",", ":")))
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
