#!/usr/bin/python3
"""Edge agent throughput: storescu -> rdg-clinic agent -> rdg-gateway, against storescu -> storescp
and storescu -> Orthanc.

NOT part of the pass/fail suite (CTest does not collect it). See tests/bench/README.md.

    /usr/bin/python3 tests/bench/agent_bench.py [--small 2000] [--large 500] [--associations 1,4]
                                                [--parallel 4] [--tools storescp,orthanc,agent]
                                                [--keep DIR]

For each corpus (the synthetic CT corpora of ingest_bench.py) it measures, in the same run:
  * storescp: storescu (one association, TCP_NODELAY=1) into storescp (page cache, no fsync, no
    index) — the DICOM baseline, exactly as ingest_bench.py runs it;
  * Orthanc 1.10 (defaults, in a network namespace of its own), C-STORE over each number of
    associations: the PACS a clinic could run instead of the agent;
  * the agent, device side, over each number of associations (storescu processes each sending
    its part of the corpus): until every storescu has had every C-STORE response — each sent
    only after the object was checked by the gateway's parser, fsynced with its directory and
    committed in the outbox — while the forwarder already uploads to the gateway (mTLS, durable
    ingest) on the same machine;
  * the agent, end to end: until `agent status` shows the outbox empty, i.e. everything stored by
    the gateway.
The gateway runs on the same cores as the agent here; in a clinic it is in the county, so the
device-side figure of a run is the agent's share of the machine, not the agent alone.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ingest_bench  # noqa: E402  (sets up the environment and imports the harness)
from ingest_bench import harness, log  # noqa: E402

AGENT_TOOLS = ("storescp", "orthanc", "agent")


def storescu_commands(corpus, associations, ae_title, port, wd):
    """The storescu command lines sending `corpus` over `associations` associations at once."""
    storescu = ["storescu", "-aet", "BENCH", "-aec", ae_title]
    peer = ["127.0.0.1", str(port)]
    if associations == 1:
        lists = [storescu + ["--scan-directories", "--recurse"] + peer + [corpus]]
    else:
        lists = [storescu + peer + files
                 for files in ingest_bench.split_files(corpus, associations)]
    return [(argv, os.path.join(wd, f"storescu-{i}.out"), os.path.join(wd, f"storescu-{i}.err"))
            for i, argv in enumerate(lists)]


def run_agent(corpus, info, associations, parallel, pki, workroot, timeout):
    wd = tempfile.mkdtemp(prefix=f"agent-{info['name']}-a{associations}-", dir=workroot)
    result = {"corpus": info["name"], "tool": "agent", "parallel": associations,
              "instances": info["files"], "bytes": info["bytes"]}
    gateway = harness.Gateway(wd, pki)
    gateway.start()
    agent = harness.Agent(wd, gateway, extra=f"forwarder {{ parallel: {parallel} }}\n")
    try:
        agent.start()
        agent_pid, gateway_pid = agent.proc.pid, gateway.proc.pid
        os.sync()  # earlier runs' dirty pages must not be flushed inside this run
        procs0 = ingest_bench.all_process_cpu()
        sys0 = ingest_bench.system_cpu()
        peaks = ingest_bench.PeakRss()
        peaks.watch(agent_pid)
        started = time.monotonic()
        try:
            codes, device, usages, pids, aborted = ingest_bench.run_timed_all(
                storescu_commands(corpus, associations, agent.ae_title, agent.dicom_port, wd),
                dict(os.environ, TCP_NODELAY="1"), peaks, timeout,
                lambda: None if agent.proc.poll() is None else "the agent died")
            failed = [f"storescu {i} exit {c}" for i, c in enumerate(codes) if c != 0]
            if aborted or failed:
                result["error"] = f"{aborted or '; '.join(failed)}; see {wd}"
                return result, wd
            status = agent.wait_drained(info["files"], timeout=timeout)
            end = time.monotonic() - started
        finally:
            peaks.stop()
        sys1, procs1 = ingest_bench.system_cpu(), ingest_bench.all_process_cpu()
        if status["sent"] != info["files"] or status["dead_letter"]:
            result["error"] = (f"agent forwarded {status['sent']}, dead {status['dead_letter']}; "
                               f"see {wd}")
            return result, wd
        stored = gateway.query("SELECT count(*) FROM objects")[0][0]
        if stored != info["files"]:
            result["error"] = f"gateway stored {stored} of {info['files']}; see {wd}"
            return result, wd

        def cpu_of(pids):
            return sum(procs1[p][1] - procs0.get(p, ("", 0.0))[1] for p in pids if p in procs1)

        agent_pids = {agent_pid} | ingest_bench.children_of(agent_pid)
        gateway_pids = {gateway_pid} | ingest_bench.children_of(gateway_pid)
        result.update({
            "device_seconds": round(device, 3),
            "seconds": round(end, 3),
            "agent_cpu_seconds": round(cpu_of(agent_pids), 2),
            "gateway_cpu_seconds": round(cpu_of(gateway_pids), 2),
            "storescu_cpu_seconds": round(sum(u.ru_utime + u.ru_stime for u in usages), 2),
            "agent_peak_rss_mb": peaks.mb(agent_pid),
        })
        result.update(ingest_bench.system_cpu_delta(sys0, sys1))
        return result, wd
    finally:
        agent.stop()
        gateway.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=2000, help="instances of ~53 KB (0: skip)")
    ap.add_argument("--large", type=int, default=500, help="instances of ~525 KB (0: skip)")
    ap.add_argument("--associations", default="1,4",
                    help="comma-separated numbers of storescu associations at once (agent and "
                         "Orthanc; storescp takes one)")
    ap.add_argument("--parallel", type=int, default=4, help="the agent's uploads in flight")
    ap.add_argument("--tools", default=",".join(AGENT_TOOLS),
                    help=f"comma-separated tools to measure (default {','.join(AGENT_TOOLS)})")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR and keep it; a corpus already in DIR is reused")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    associations = [int(a) for a in args.associations.split(",") if a.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if not tools or set(tools) - set(AGENT_TOOLS) or not associations:
        ap.error(f"--tools {args.tools!r}: choose from {', '.join(AGENT_TOOLS)}")
    orthanc = ingest_bench.check_tools([{"agent": "rdg"}.get(t, t) for t in tools])
    if args.keep:
        workroot = os.path.abspath(args.keep)
        os.makedirs(workroot, exist_ok=True)
    else:
        workroot = tempfile.mkdtemp(prefix="rdg-agent-bench-")
    create_us = ingest_bench.file_creation_probe(workroot)
    log(f"creating a file in {workroot} takes {create_us} us (median of 500)")
    pki = harness.make_pki() if "agent" in tools else None
    rows, failures = [], []
    try:
        for name, count in (("small", args.small), ("large", args.large)):
            if count <= 0:
                continue
            corpus, info = ingest_bench.build_corpus(workroot, name, count)
            runs = []
            if "storescp" in tools:
                log(f"{name}: storescu -> storescp ...")
                r, _ = ingest_bench.run_storescp(corpus, info, workroot, args.timeout)
                runs.append(("storescp x1", r, r.get("seconds")))
            for n in (associations if orthanc else ()):
                log(f"{name}: storescu x{n} -> Orthanc ...")
                r, _ = ingest_bench.run_orthanc(corpus, info, "cstore", n, orthanc, workroot,
                                                args.timeout)
                runs.append((f"Orthanc C-STORE x{n}", r, r.get("seconds")))
            for n in (associations if "agent" in tools else ()):
                log(f"{name}: storescu x{n} -> agent -> gateway ...")
                r, _ = run_agent(corpus, info, n, args.parallel, pki, workroot, args.timeout)
                runs.append((f"agent x{n}, device acks", r, r.get("device_seconds")))
                runs.append((f"agent x{n}, end to end", r, r.get("seconds")))
            base = next((s for label, r, s in runs if label == "storescp x1" and s), None)
            for label, r, seconds in runs:
                if "error" in r:
                    failures.append(f"{name} {label}: {r['error']}")
                    continue
                rows.append((name, info, label, seconds, r, base))
    finally:
        for proc in ingest_bench._children:
            if proc.returncode is None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
        if pki:
            shutil.rmtree(pki, ignore_errors=True)
    print()
    print(f"{'corpus':<6} {'inst':>5}  {'path':<26} {'seconds':>8} {'inst/s':>8} {'MB/s':>7} "
          f"{'vs storescp':>11}  CPU ms/object")
    for name, info, label, seconds, r, base in rows:
        mb = info["bytes"] / 1e6
        ratio = f"{base / seconds:>10.2f}x" if base else f"{'-':>11}"
        cpu = ""
        if r["tool"] == "agent":
            per = 1000 / info["files"]
            cpu = (f"agent {r['agent_cpu_seconds'] * per:.2f}, gateway "
                   f"{r['gateway_cpu_seconds'] * per:.2f}, storescu "
                   f"{r['storescu_cpu_seconds'] * per:.2f}; machine {r['machine_busy_pct']}% busy")
        elif "server_cpu_seconds" in r:
            cpu = f"server {r['server_cpu_seconds'] * 1000 / info['files']:.2f}"
        print(f"{name:<6} {info['files']:>5}  {label:<26} {seconds:>8.2f} "
              f"{info['files'] / seconds:>8.1f} {mb / seconds:>7.1f} {ratio}  {cpu}")
    print()
    print("The agent acknowledges an object to the device only once the gateway's parser has")
    print("checked it and it is durable in the outbox (file and directory fsynced, row committed")
    print("with synchronous=FULL); storescp writes into the page cache (no fsync, no check, no")
    print("index); Orthanc fdatasyncs each file and commits its index without flushing it. The")
    print("gateway (with its parsers) runs on the same cores as the agent in this benchmark.")
    print(f"Creating one empty file in the work directory took {create_us} us (median).")
    for f in failures:
        print(f"error: {f}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
