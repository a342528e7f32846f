#!/usr/bin/python3
"""Where the gateway's CPU goes while it ingests: one ingest_bench RDG run under `perf record`.

NOT part of the pass/fail suite. See tests/bench/README.md.

    /usr/bin/python3 tests/bench/ingest_profile.py [--small 2000] [--parallel 16] [--keep DIR]

Starts a fresh gateway (test harness, dev PKI), attaches `perf record -g --call-graph dwarf` to it
(the gateway process only: its rdg-parser children and the client are not in the profile), runs
`rdg-clinic upload --parallel N` over the small corpus of ingest_bench.py, and prints the share of
the gateway's sampled CPU spent inside each stage of an upload (inclusive: a stage's share holds
its sub-stages). DWARF unwinding of Debian's libraries (built without frame pointers) loses some
stacks, so shares are approximate and do not add up exactly. Needs `perf` (linux-perf) and root or
kernel.perf_event_paranoid <= 1.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("RDG_BIN_DIR", os.path.join(REPO, "build", "bin"))
os.environ.setdefault("RDG_SOURCE_DIR", REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

import harness  # noqa: E402  (needs the environment above)
import ingest_bench  # noqa: E402  (the corpus)

# (label, function whose inclusive share is the stage's), in the order an object meets them.
STAGES = [
    ("upload message handled on the ingest pool", "rdg::api::UploadReactor::Step"),
    ("  attach: session lookup, staging file", "rdg::ingest::Ingestor::Attach"),
    ("    create the staging file (open O_CREAT)", "rdg::storage::StagingArea::OpenForAppend"),
    ("    stored-content lookup (SQLite read)", "rdg::storage::SqliteIndexStore::FindObjectByContent"),
    ("  append: write and SHA-256", "rdg::ingest::UploadHandle::Append"),
    ("    SHA-256", "SHA256_Update"),
    ("  commit: parse, checks, blob, index", "rdg::ingest::Ingestor::CommitStaged"),
    ("    round trip to an rdg-parser process", "rdg::parsing::IsolatedParser::Parse"),
    ("    SOP Instance UID lookup (SQLite read)", "rdg::storage::SqliteIndexStore::FindObject"),
    ("    routing decision", "rdg::routing::Router::Route"),
    ("    after commit: identity review, unlink", "rdg::ingest::Ingestor::AfterCommit"),
    ("index committer thread: one batch", "rdg::ingest::IndexCommitter::CommitBatch"),
    ("  blobs durable: syncfs, checks, links", "rdg::storage::FileBlobStore::AdoptAll"),
    ("    syncfs (twice)", "rdg::storage::SyncFileSystem"),
    ("    each file's writeback error", "rdg::storage::WaitForWriteback"),
    ("  rows: one transaction", "rdg::storage::SqliteIndexStore::CommitObjects"),
    ("    each object's rows", "rdg::storage::SqliteIndexStore::CommitOne"),
    ("    its audit record (hash chain)", "rdg::storage::SqliteIndexStore::InsertAuditRow"),
    ("    BEGIN / COMMIT with the WAL fsync", "rdg::storage::sqlite_db::Connection::Exec"),
    ("authentication of the call", "rdg::api::TlsPeerAuthenticator::Authenticate"),
    ("server interceptors", "grpc::internal::InterceptorBatchMethodsImpl::RunInterceptors"),
    ("sending the answer", "grpc::ServerReadReactor<rdg::v1::UploadRequest>::Finish"),
]


def shares(perf_data):
    """{symbol: inclusive % of samples} from `perf report --children`."""
    out = subprocess.run(["perf", "report", "-i", perf_data, "--children", "--sort", "sym",
                          "--stdio", "-g", "none"], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[.\]\s+(.*\S)", line)
        if m:
            found.setdefault(m.group(2), float(m.group(1)))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=2000, help="objects of ~53 KB")
    ap.add_argument("--parallel", type=int, default=16, help="rdg-clinic upload --parallel")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (corpus reused)")
    args = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("perf not found: apt-get install linux-perf")
    workroot = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="rdg-prof-")
    os.makedirs(workroot, exist_ok=True)
    corpus, info = ingest_bench.build_corpus(workroot, "small", args.small)
    pki = harness.make_pki()
    wd = tempfile.mkdtemp(prefix="gateway-", dir=workroot)
    gateway = harness.Gateway(wd, pki)
    gateway.start()
    perf_data = os.path.join(wd, "perf.data")
    try:
        clinic = harness.Clinic(gateway, "clinic-a1")
        perf = subprocess.Popen(["perf", "record", "-q", "-p", str(gateway.proc.pid), "-F", "499",
                                 "-g", "--call-graph", "dwarf,8192", "-o", perf_data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # perf.data appears once perf is attached to the gateway.
        deadline = time.monotonic() + 30
        while not os.path.exists(perf_data) and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        upload = clinic.run("--json", "upload", "--parallel", str(args.parallel), corpus,
                            timeout=900)
        wall = time.monotonic() - t0
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=120)
        if upload.returncode != 0:
            sys.exit(f"upload failed ({upload.returncode}): {upload.stderr[-500:]}")
    finally:
        gateway.stop()
    found = shares(perf_data)
    print(f"{info['files']} objects of ~{info['mean_file_bytes'] // 1000} KB, --parallel "
          f"{args.parallel}, {info['files'] / wall:.0f} objects/s under perf")
    print(f"{'stage':<48} {'share of the gateway CPU':>24}")
    for label, symbol in STAGES:
        print(f"{label:<48} {found.get(symbol, 0.0):>23.1f}%")
    if not args.keep:
        shutil.rmtree(workroot, ignore_errors=True)
        shutil.rmtree(pki, ignore_errors=True)


if __name__ == "__main__":
    main()
