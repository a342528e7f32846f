#!/usr/bin/python3
"""Ingest through HAProxy to gateway replicas on one PostgreSQL index (not part of the pass/fail
suite): how much one replica takes, and what a second one adds on this machine.

    /usr/bin/python3 tests/bench/replicas_bench.py                # 2,000 small objects, --parallel 8
    /usr/bin/python3 tests/bench/replicas_bench.py --small 500 --parallel 16

For each setup, a fresh throwaway PostgreSQL cluster (tests/integration/pg_cluster.py), the
replicas on one shared data dir, and `rdg-clinic upload --parallel N` of ingest_bench.py's small
corpus as clinic-a1:
  1 replica, direct       — the clinic talks to the gateway itself (the SQLite-free baseline)
  1 replica, HAProxy      — the same through the load balancer (its cost)
  2 replicas, HAProxy     — what the second replica adds
Printed per setup: instances/s, and the CPU seconds of the gateways (their rdg-parser processes
included), PostgreSQL, HAProxy and the client, and how busy the machine was: on a machine whose
cores the client, the database and the gateways share, a second replica can only use what the
first left idle. The replicas keep to the demo configuration's defaults.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_bench  # noqa: E402  (puts tests/integration on the path; the corpus and CPU probes)
import harness  # noqa: E402
import pg_cluster  # noqa: E402


def cpu_by_group(before, after, groups):
    """CPU seconds per group of process names between two all_process_cpu() snapshots."""
    out = {g: 0.0 for g in groups}
    for pid, (comm, cpu) in after.items():
        for group, names in groups.items():
            if comm in names:
                out[group] += cpu - before.get(pid, (comm, 0.0))[1]
    return out


def run(corpus, info, replicas, balanced, parallel, pki, workroot):
    wd = tempfile.mkdtemp(prefix=f"replicas-{replicas}-", dir=workroot)
    with pg_cluster.PgCluster() as cluster:
        shared = os.path.join(wd, "data")
        gateways = []
        balancer = None
        try:
            for i in range(replicas):
                os.makedirs(os.path.join(wd, f"g{i}"))
                g = harness.Gateway(os.path.join(wd, f"g{i}"), pki, "",
                                    index_dsn=cluster.dsn, data_dir=shared)
                g.start()
                gateways.append(g)
            target = harness.Balancer(wd, pki, gateways) if balanced else gateways[0]
            balancer = target if balanced else None
            clinic = harness.Clinic(target, "clinic-a1")
            os.sync()
            cpu0, sys0 = ingest_bench.all_process_cpu(), ingest_bench.system_cpu()
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            proc = clinic.run("--json", "upload", "--parallel", str(parallel), corpus,
                              timeout=1800)
            wall = time.monotonic() - started
            cpu1, sys1 = ingest_bench.all_process_cpu(), ingest_bench.system_cpu()
            # The client has exited (its CPU is no longer in /proc): what the waited child used.
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            client_cpu = (children1.ru_utime + children1.ru_stime -
                          children0.ru_utime - children0.ru_stime)
        finally:
            if balancer:
                balancer.stop()
            for g in gateways:
                g.stop()
    report = json.loads(proc.stdout) if proc.returncode == 0 else None
    stored = sum(1 for f in report["files"] if f["ok"]) if report else 0
    if stored != info["files"]:
        raise SystemExit(f"{stored} of {info['files']} stored: {proc.stderr[-2000:]}")
    cpu = cpu_by_group(cpu0, cpu1, {"gateways": {"rdg-gateway", "rdg-parser"},
                                    "postgres": {"postgres"}, "haproxy": {"haproxy"}})
    cpu["client"] = client_cpu
    machine = ingest_bench.system_cpu_delta(sys0, sys1)
    shutil.rmtree(wd, ignore_errors=True)
    return {"replicas": replicas, "balanced": balanced, "seconds": round(wall, 2),
            "instances_per_s": round(info["files"] / wall),
            **{k: round(v, 2) for k, v in cpu.items()}, "busy_pct": machine["machine_busy_pct"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=2000, help="instances of ~53 KB")
    ap.add_argument("--parallel", type=int, default=8)
    args = ap.parse_args()
    if shutil.which("haproxy") is None:
        raise SystemExit("haproxy is missing: deploy/install-deps.sh")
    workroot = tempfile.mkdtemp(prefix="rdg-replicas-bench-")
    pki = harness.make_pki()
    try:
        corpus, info = ingest_bench.build_corpus(workroot, "small", args.small)
        rows = [run(corpus, info, n, balanced, args.parallel, pki, workroot)
                for n, balanced in ((1, False), (1, True), (2, True))]
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    print(f"\n{info['files']} objects of ~{info['bytes'] // info['files'] // 1000} KB, "
          f"rdg-clinic --parallel {args.parallel}, CPU seconds by process group:")
    print(f"{'setup':<22} {'inst/s':>7} {'gateways':>9} {'postgres':>9} {'haproxy':>8} "
          f"{'client':>7} {'machine busy':>13}")
    for r in rows:
        setup = f"{r['replicas']} replica{'s' if r['replicas'] > 1 else ''}, " + \
            ("HAProxy" if r["balanced"] else "direct")
        print(f"{setup:<22} {r['instances_per_s']:>7} {r['gateways']:>9} {r['postgres']:>9} "
              f"{r['haproxy']:>8} {r['client']:>7} {r['busy_pct']:>12}%")
    one, two = rows[1]["instances_per_s"], rows[2]["instances_per_s"]
    print(f"RESULT two_replicas_over_one={two / one:.2f}")


if __name__ == "__main__":
    main()
