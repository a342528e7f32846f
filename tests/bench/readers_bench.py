#!/usr/bin/python3
"""Readers while clinics upload: worklist and claim latency with and without 200 upload streams.

NOT part of the pass/fail suite (CTest does not collect it). See tests/bench/README.md.

    /usr/bin/python3 tests/bench/readers_bench.py [--streams 200] [--objects 8000] [--readers 50]

One fresh gateway (dev PKI, test harness) with seed exams in county A's imaging queue. Phase
"quiet": `reader_latency_bench` (build/bench) runs R reader threads as reader-a-rad (worklist every
100 ms each, a claim and release every 5th) for --quiet-seconds. Phase "uploads": the same
readers while `rdg-clinic upload --parallel STREAMS` sends --objects new small CT objects; the
readers stop when the upload ends. Printed: calls, p50, p99 and max of each kind per phase, the
upload's instances/s, the gateway's CPU by thread, and one line of JSON.
"""
import argparse
import json
import os
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
import ingest_bench  # noqa: E402  (corpus and /proc helpers)

DRIVER = os.path.join(os.path.dirname(harness.BIN_DIR), "bench", "reader_latency_bench")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start_readers(gateway, readers, out_path, seconds=0):
    pki = gateway.pki
    argv = [DRIVER, "--gateway", gateway.address, "--ca", os.path.join(pki, "ca.pem"),
            "--cert", os.path.join(pki, "reader-a-rad.pem"),
            "--key", os.path.join(pki, "reader-a-rad.key"), "--readers", str(readers)]
    if seconds:
        argv += ["--seconds", str(seconds)]
    return subprocess.Popen(argv, stdout=open(out_path, "w"), stderr=subprocess.STDOUT)


def finish_readers(proc, out_path):
    proc.wait(timeout=120)
    with open(out_path) as f:
        lines = [line for line in f if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"reader_latency_bench failed ({proc.returncode}); see {out_path}")
    return json.loads(lines[-1])


def niced_threads(pid):
    """{thread name: count} of the process's threads whose nice value is above 0."""
    out = {}
    for _, name, fields in ingest_bench.thread_stats(pid):
        if int(fields[16]) > 0:  # field 19 of stat: nice
            out[name] = out.get(name, 0) + 1
    return out


def row(phase, r, extra=""):
    def cell(s):
        if not s.get("calls"):
            return f"{0:>6} {'-':>8} {'-':>8} {'-':>8}"
        return f"{s['calls']:>6} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f}"
    errors = {k: v for k, v in {**r["worklist"]["errors"], **r["claim"]["errors"]}.items()}
    return (f"{phase:<8} {cell(r['worklist'])}   {cell(r['claim'])}   "
            f"{json.dumps(errors) if errors else '-':<20} {extra}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=200, help="rdg-clinic upload --parallel")
    ap.add_argument("--objects", type=int, default=8000, help="small objects uploaded (~53 KB)")
    ap.add_argument("--readers", type=int, default=50, help="reader threads (one channel each)")
    ap.add_argument("--quiet-seconds", type=float, default=10)
    ap.add_argument("--ingest-nice", type=int,
                    help="the gateway's ingest_nice (default: the gateway's own default)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (corpus reused)")
    args = ap.parse_args()
    if not os.access(DRIVER, os.X_OK):
        sys.exit(f"{DRIVER} not found: build first (cmake --build build)")

    workroot = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="rdg-readers-")
    os.makedirs(workroot, exist_ok=True)
    seed, _ = ingest_bench.build_corpus(workroot, "small", 200)
    load, info = ingest_bench.build_corpus(workroot, "small", args.objects)
    pki = harness.make_pki()
    wd = tempfile.mkdtemp(prefix="gateway-", dir=workroot)
    limits = max(256, args.streams)
    config = (f"limits {{ max_concurrent_uploads: {limits} "
              f"max_concurrent_uploads_per_institution: {limits} }}")
    if args.ingest_nice is not None:
        config += f"\ningest_nice: {args.ingest_nice}"
    gateway = harness.Gateway(wd, pki, config)
    gateway.start()
    try:
        clinic = harness.Clinic(gateway, "clinic-a1")
        seeded = clinic.json("upload", "--parallel", "8", seed)
        log(f"seeded {len(seeded['exams'])} exams")

        log(f"quiet: {args.readers} readers for {args.quiet_seconds} s ...")
        quiet = finish_readers(start_readers(gateway, args.readers, os.path.join(wd, "quiet.json"),
                                             args.quiet_seconds), os.path.join(wd, "quiet.json"))

        log(f"uploads: {args.readers} readers while {args.streams} streams upload "
            f"{args.objects} objects ...")
        pid = gateway.proc.pid
        threads0, cpu0 = ingest_bench.thread_cpu(pid), ingest_bench.proc_cpu_seconds(pid)
        out = os.path.join(wd, "uploads.json")
        readers = start_readers(gateway, args.readers, out)
        t0 = time.monotonic()
        upload = clinic.run("--json", "upload", "--parallel", str(args.streams), load,
                            timeout=900)
        wall = time.monotonic() - t0
        readers.send_signal(signal.SIGINT)
        loaded = finish_readers(readers, out)
        threads1, cpu1 = ingest_bench.thread_cpu(pid), ingest_bench.proc_cpu_seconds(pid)
        niced = niced_threads(pid)
        peak_rss_mb = round(ingest_bench.vm_hwm_kb(pid) / 1024, 1)
        report = json.loads(upload.stdout)
        stored = sum(1 for f in report["files"] if f["ok"])
        if upload.returncode != 0 or stored != info["files"]:
            sys.exit(f"upload failed ({upload.returncode}): {stored} of {info['files']} stored")
    finally:
        gateway.stop()
    threads = ingest_bench.with_exited(ingest_bench.thread_cpu_delta(threads0, threads1, wall),
                                       cpu1 - cpu0, wall)

    print()
    print(f"{'phase':<8} {'--------- worklist (ms) ---------':>33}   "
          f"{'----------- claim (ms) ----------':>33}")
    print(f"{'':<8} {'calls':>6} {'p50':>8} {'p99':>8} {'max':>8}   "
          f"{'calls':>6} {'p50':>8} {'p99':>8} {'max':>8}   {'errors':<20}")
    print(row("quiet", quiet))
    print(row("uploads", loaded, f"{info['files'] / wall:.0f} inst/s uploaded by {args.streams} "
                                 f"streams in {wall:.1f} s"))
    print()
    print("gateway CPU by thread during the uploads: " + ", ".join(
        f"{name}" + (f" x{n}" if n > 1 else "") + f" {cpu:.2f} s"
        for name, n, cpu, _ in threads if cpu > 0))
    print(f"gateway peak RSS (VmHWM) over the whole run: {peak_rss_mb} MB")
    print("gateway threads at a lower CPU priority after the uploads: " +
          (", ".join(f"{name} x{n}" for name, n in sorted(niced.items())) or "none"))
    print("Latency is each call's wall time at the reader (gRPC over mTLS on loopback); the")
    print("driver, the uploading client and the gateway share the machine's cores.")
    print()
    print(json.dumps({"bench": "readers", "cores": os.cpu_count(), "streams": args.streams,
                      "ingest_nice": args.ingest_nice,
                      "objects": info["files"], "upload_seconds": round(wall, 2),
                      "quiet": quiet, "uploads": loaded, "gateway_threads": threads,
                      "niced_threads": niced, "gateway_peak_rss_mb": peak_rss_mb},
                     separators=(",", ":")))
    if not args.keep:
        shutil.rmtree(workroot, ignore_errors=True)
        shutil.rmtree(pki, ignore_errors=True)


if __name__ == "__main__":
    main()
