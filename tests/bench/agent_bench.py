#!/usr/bin/python3
"""Edge agent throughput: storescu -> rdg-clinic agent -> rdg-gateway, against storescu -> storescp.

NOT part of the pass/fail suite (CTest does not collect it). See tests/bench/README.md.

    /usr/bin/python3 tests/bench/agent_bench.py [--small 1000] [--large 200] [--parallel 4]

For each corpus (the synthetic CT corpora of ingest_bench.py) it measures, in the same run:
  * storescp: storescu (one association, TCP_NODELAY=1) into storescp (page cache, no fsync, no
    index) — the DICOM baseline, exactly as ingest_bench.py runs it;
  * agent, device side: the same storescu into the agent's C-STORE SCP, until storescu has had
    every C-STORE response — each one sent only after the object was fsynced and committed in the
    outbox, while the forwarder already uploads to the gateway (mTLS, durable ingest);
  * agent, end to end: until `agent status` shows the outbox empty, i.e. everything stored by the
    gateway.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ingest_bench  # noqa: E402  (sets up the environment and imports the harness)
from ingest_bench import harness, log  # noqa: E402


def run_agent(corpus, info, parallel, pki, workroot, timeout):
    wd = tempfile.mkdtemp(prefix=f"agent-{info['name']}-", dir=workroot)
    gateway = harness.Gateway(wd, pki)
    gateway.start()
    agent = harness.Agent(wd, gateway, extra=f"forwarder {{ parallel: {parallel} }}\n")
    try:
        agent.start()
        env = dict(os.environ, TCP_NODELAY="1")
        os.sync()
        started = time.monotonic()
        proc = subprocess.run(["storescu", "--scan-directories", "--recurse", "-aet", "BENCH",
                               "-aec", agent.ae_title, "127.0.0.1", str(agent.dicom_port), corpus],
                              capture_output=True, text=True, timeout=timeout, env=env)
        device = time.monotonic() - started
        if proc.returncode != 0:
            return {"error": f"storescu failed: {proc.stderr[-500:]}"}, wd
        status = agent.wait_drained(info["files"], timeout=timeout)
        end = time.monotonic() - started
        if status["sent"] != info["files"] or status["dead_letter"]:
            return {"error": f"agent forwarded {status['sent']}, dead {status['dead_letter']}"}, wd
        stored = gateway.query("SELECT count(*) FROM objects")[0][0]
        if stored != info["files"]:
            return {"error": f"gateway stored {stored} of {info['files']}"}, wd
        return {"device_seconds": round(device, 3), "end_to_end_seconds": round(end, 3)}, wd
    finally:
        agent.stop()
        gateway.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=1000, help="instances of ~53 KB (0: skip)")
    ap.add_argument("--large", type=int, default=200, help="instances of ~525 KB (0: skip)")
    ap.add_argument("--parallel", type=int, default=4, help="the agent's uploads in flight")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    workroot = tempfile.mkdtemp(prefix="rdg-agent-bench-")
    pki = harness.make_pki()
    rows = []
    try:
        for name, count in (("small", args.small), ("large", args.large)):
            if count <= 0:
                continue
            corpus, info = ingest_bench.build_corpus(workroot, name, count)
            log(f"{name}: storescu -> storescp ...")
            base, _ = ingest_bench.run_storescp(corpus, info, workroot, args.timeout)
            if "error" in base:
                sys.exit(f"baseline failed: {base['error']}")
            log(f"{name}: storescu -> agent -> gateway ...")
            r, wd = run_agent(corpus, info, args.parallel, pki, workroot, args.timeout)
            if "error" in r:
                sys.exit(f"agent run failed: {r['error']} (see {wd})")
            mb = info["bytes"] / 1e6
            for label, seconds in (("storescu -> storescp", base["seconds"]),
                                   ("storescu -> agent (device acks)", r["device_seconds"]),
                                   ("storescu -> agent -> gateway", r["end_to_end_seconds"])):
                rows.append((name, info["files"], label, seconds, info["files"] / seconds,
                             mb / seconds, base["seconds"] / seconds))
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    print()
    print(f"{'corpus':<6} {'inst':>5}  {'path':<33} {'seconds':>8} {'inst/s':>8} {'MB/s':>7} "
          f"{'vs storescp':>11}")
    for name, n, label, s, ips, mbs, ratio in rows:
        print(f"{name:<6} {n:>5}  {label:<33} {s:>8.2f} {ips:>8.1f} {mbs:>7.1f} {ratio:>10.2f}x")


if __name__ == "__main__":
    main()
