"""The HTTP monitoring port against the real gateway: /metrics is valid Prometheus exposition
(parsed with Debian's python3-prometheus-client) and agrees with `rdg-admin tat|queues|breaches
--json`; /healthz and /readyz answer probes; everything else needs the token or an
administrator's certificate (401 without, 403 for the wrong token or any other role)."""
import calendar
import http.client
import json
import os
import re
import resource
import socket
import subprocess
import ssl
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import pydicom
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

import harness

STAGE_LABELS = {"RECEIVED_TO_CLAIMED": "claim", "RECEIVED_TO_FINAL": "final",
                "FINAL_TO_ACKNOWLEDGED": "ack", "CRITICAL_ACKNOWLEDGEMENT": "critical_ack"}


class Admin(harness.Reader):
    program = "rdg-admin"


def get(url, headers=None):
    """(status, headers, body) of a GET, without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def seconds(duration):
    return float(duration.rstrip("s")) if duration else 0.0


class MonitoringTest(harness.GatewayTestCase):
    injected_clock = True
    extra_config = "housekeeping_seconds: 1\n"

    def upload_ct(self, priority="ROUTINE", clinic="clinic-a1"):
        ds = pydicom.dcmread(os.path.join(harness.PYDICOM_FILES, "CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))
        return self.clinic(clinic).json("upload", "--priority", priority, path)["exams"][0]["exam_id"]

    def metrics(self):
        status, headers, body = get(self.gateway.monitoring_url + "/metrics",
                                    {"Authorization": "Bearer " + self.gateway.monitoring_token})
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return {f.name: f for f in text_string_to_metric_families(body)}

    def read(self, exam, claim_at, final_at, ack_at=None, clinic="clinic-a1"):
        rad = self.reader("reader-a-rad")
        self.set_clock_offset(claim_at * 60)
        self.assertEqual(rad.run("claim", exam).returncode, 0)
        self.set_clock_offset(final_at * 60)
        proc = rad.run("report", exam, "--final", "--findings", "Lungs clear.",
                       "--impression", "Normal chest CT.")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        if ack_at is not None:
            self.set_clock_offset(ack_at * 60)
            self.assertEqual(self.clinic(clinic).run("ack", exam).returncode, 0)

    def test_metrics_are_valid_prometheus_and_agree_with_rdg_admin(self):
        admin = Admin(self.gateway, "admin")
        # Five readings with known offsets (minutes): claims 5..25, finals 10 min later,
        # acknowledgements for three; one STAT exam left unclaimed past its 10 min target.
        exams = [self.upload_ct() for _ in range(5)]
        for i, exam in enumerate(exams):
            self.read(exam, claim_at=5 * (i + 1), final_at=5 * (i + 1) + 10,
                      ack_at=5 * (i + 1) + 12 if i < 3 else None)
        stat = self.upload_ct("STAT")
        self.set_clock_offset(60 * 60)  # the STAT exam is 25+ min past its claim target
        harness.wait_for(lambda: admin.json("breaches", "--open").get("breaches"), timeout=30,
                         interval=0.2, what="the STAT breach")
        self.upload_ct(clinic="clinic-b1")  # another county, waiting

        families = self.metrics()
        for name, kind in (("rdg_tat_seconds", "histogram"), ("rdg_tat_within_target", "counter"),
                           ("rdg_sla_breaches", "counter"), ("rdg_sla_breaches_open", "gauge"),
                           ("rdg_queue_depth", "gauge"), ("rdg_queue_overdue", "gauge"),
                           ("rdg_queue_oldest_waiting_seconds", "gauge"),
                           ("rdg_ingest_objects", "counter"), ("rdg_ingest_bytes", "counter"),
                           ("rdg_build_info", "gauge")):
            with self.subTest(family=name):
                self.assertIn(name, families)
                self.assertEqual(families[name].type, kind)
        # What an on-call person is paged on (deploy/prometheus/rdg-alerts.yml).
        for name, kind in (("rdg_ready", "gauge"), ("rdg_storage_free_bytes", "gauge"),
                           ("rdg_storage_reserve_bytes", "gauge"),
                           ("rdg_certificate_expiry_timestamp_seconds", "gauge"),
                           ("rdg_grpc_server_handled", "counter"),
                           ("rdg_grpc_server_handling_seconds", "histogram"),
                           ("process_cpu_seconds", "counter"),
                           ("process_resident_memory_bytes", "gauge"),
                           ("process_open_fds", "gauge"), ("process_start_time_seconds", "gauge")):
            with self.subTest(family=name):
                self.assertIn(name, families)
                self.assertEqual(families[name].type, kind)
        self.assertEqual(families["rdg_ready"].samples[0].value, 1)
        self.assertEqual(families["rdg_storage_reserve_bytes"].samples[0].value, 64 << 20)
        expiry = {s.labels["certificate"]: s.value
                  for s in families["rdg_certificate_expiry_timestamp_seconds"].samples}
        not_after = subprocess.run(
            ["openssl", "x509", "-noout", "-enddate", "-in", os.path.join(self.pki, "gateway.pem")],
            capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
        self.assertEqual(expiry["gateway"],
                         calendar.timegm(time.strptime(not_after, "%b %d %H:%M:%S %Y GMT")))
        self.assertIn("ca", expiry)
        handled = {(s.labels["method"], s.labels["code"]): s.value
                   for s in families["rdg_grpc_server_handled"].samples
                   if s.name.endswith("_total")}
        self.assertGreater(handled.get(("/rdg.v1.IngestService/Upload", "OK"), 0), 0)
        self.assertGreater(families["process_resident_memory_bytes"].samples[0].value, 1 << 20)
        # The release the binaries say with --version, not "unknown".
        version = subprocess.run([os.path.join(harness.BIN_DIR, "rdg-gateway"), "--version"],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
        self.assertEqual(families["rdg_build_info"].samples[0].labels["version"], version)

        # Turnaround: counts and sums per stage equal `rdg-admin tat`; each p50 lies in the
        # bucket where the cumulative count first reaches half.
        tat = admin.json("tat", "--since", "30d")["groups"]
        self.assertEqual(len(tat), 1)
        figures = {STAGE_LABELS[s["stage"]]: s for s in tat[0]["stages"]}
        self.assertEqual({k: int(v["count"]) for k, v in figures.items()},
                         {"claim": 5, "final": 5, "ack": 3})
        samples = families["rdg_tat_seconds"].samples
        for stage, f in figures.items():
            with self.subTest(stage=stage):
                mine = [s for s in samples if s.labels["stage"] == stage]
                self.assertTrue(all(s.labels["county"] == "county-a" and
                                    s.labels["exam_type"] == "CT" and
                                    s.labels["priority"] == "ROUTINE" for s in mine))
                count = sum(s.value for s in mine if s.name == "rdg_tat_seconds_count")
                total = sum(s.value for s in mine if s.name == "rdg_tat_seconds_sum")
                self.assertEqual(count, int(f["count"]))
                self.assertAlmostEqual(total, seconds(f["sum"]), places=3)
                buckets = sorted((float(s.labels["le"]), s.value) for s in mine
                                 if s.name == "rdg_tat_seconds_bucket")
                p50, half = seconds(f["p50"]), int(f["count"]) / 2
                first = next(le for le, cumulative in buckets if cumulative >= half)
                self.assertLessEqual(p50, first)
                below = [le for le, _ in buckets if le < first]
                if below:
                    self.assertGreater(p50, below[-1])
        within = {s.labels["stage"]: s.value
                  for s in families["rdg_tat_within_target"].samples}
        for stage, f in figures.items():
            self.assertAlmostEqual(within[stage] / int(f["count"]), f["within_sla_share"])

        # Queues and breaches agree with rdg-admin.
        queues = {q["queue"]: q for q in admin.json("queues")["queues"]}
        for family, field in (("rdg_queue_depth", "depth"), ("rdg_queue_overdue", "overdue"),
                              ("rdg_queue_being_read", "claimed")):
            for s in families[family].samples:
                with self.subTest(family=family, queue=s.labels["queue"]):
                    self.assertEqual(s.value, int(queues[s.labels["queue"]].get(field, 0)))
        self.assertEqual(sum(s.value for s in families["rdg_queue_depth"].samples), 2)
        breaches = admin.json("breaches")["breaches"]
        totals = {s.labels["stage"]: s.value for s in families["rdg_sla_breaches"].samples}
        for stage in STAGE_LABELS.values():
            self.assertEqual(totals[stage], sum(1 for b in breaches
                                                if STAGE_LABELS[b["stage"]] == stage), stage)
        self.assertIn(stat, [b["exam_id"] for b in breaches])
        ingest = {s.labels["outcome"]: s.value for s in families["rdg_ingest_objects"].samples}
        self.assertEqual(ingest["stored"], 7)
        self.assertGreater(families["rdg_ingest_bytes"].samples[0].value, 7 * 1000)

        # A restarted gateway reads the same figures back from the index.
        before = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
        self.gateway.stop()
        self.gateway.start()
        after = {(s.name, tuple(sorted(s.labels.items()))): s.value
                 for s in self.metrics()["rdg_tat_seconds"].samples}
        self.assertEqual(before, after)

    def test_grafana_dashboard_reads_exported_series(self):
        exam = self.upload_ct()
        self.read(exam, claim_at=5, final_at=10, ack_at=20)
        names = {s.name for f in self.metrics().values() for s in f.samples}
        with open(os.path.join(harness.SOURCE_DIR, "deploy/grafana/rdg-dashboard.json")) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
        used = {m for e in exprs for m in re.findall(r"\brdg_[a-z_]+", e)}
        self.assertGreater(len(used), 8)
        self.assertEqual(used - names, set(), "series the Grafana dashboard reads but /metrics lacks")

    def test_probes_and_access(self):
        url, token = self.gateway.monitoring_url, self.gateway.monitoring_token
        self.assertEqual(get(url + "/healthz")[0], 200)
        self.assertEqual(get(url + "/readyz")[:3:2], (200, "ready\n"))
        for path in ("/metrics", "/dashboard", "/dashboard/data.json", "/dashboard/chart.min.js"):
            with self.subTest(path=path):
                status, headers, _ = get(url + path)
                self.assertEqual(status, 401)
                self.assertIn("Bearer", headers["WWW-Authenticate"])
                self.assertEqual(get(url + path, {"Authorization": "Bearer wrong" + token})[0], 403)
                self.assertEqual(get(url + path, {"Authorization": "Bearer " + token})[0], 200)
        self.assertEqual(get(url + "/dashboard?token=nope")[0], 403)
        status, headers, _ = get(url + "/dashboard?token=" + token)
        self.assertEqual(status, 303)
        self.assertEqual(headers["Location"], "/dashboard")
        cookie = headers["Set-Cookie"].split(";")[0]
        self.assertIn("HttpOnly", headers["Set-Cookie"])
        status, _, body = get(url + "/dashboard", {"Cookie": cookie})
        self.assertEqual(status, 200)
        self.assertIn("/dashboard/chart.min.js", body)  # served locally, no CDN
        self.assertNotIn("https://", body)
        data = json.loads(get(url + "/dashboard/data.json", {"Cookie": cookie})[2])
        self.assertEqual({"tat", "compliance", "queues", "breaches", "totals"} - set(data), set())


    def test_slow_and_idle_clients_do_not_stop_healthz(self):
        """What was seen: 20 slowloris connections made /healthz time out (cpp-httplib's 8
        threads); 2,700 ranges on /healthz answered 338 KB."""
        port = self.gateway.monitoring_port
        stop = threading.Event()
        sockets = []

        def slowloris(sock):  # a header byte every half second, never the end of the headers
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                while not stop.is_set():
                    sock.sendall(b"X")
                    stop.wait(0.5)
            except OSError:
                pass
        threads = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(s)
            threads.append(threading.Thread(target=slowloris, args=(s,), daemon=True))
        sockets += [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                started = time.monotonic()
                with urllib.request.urlopen(self.gateway.monitoring_url + "/healthz", timeout=5) as r:
                    self.assertEqual(r.status, 200)
                print(f"\n  /healthz with 20 slowloris and 40 idle connections: "
                      f"{(time.monotonic() - started) * 1000:.0f} ms", end="")
        finally:
            stop.set()
            for s in sockets:
                s.close()
        for count, expected in ((2, 416), (1000, 416), (2700, 400)):  # 2,700: header too long
            ranges = ",".join(f"{i}-{i}" for i in range(count))
            status, _, body = get(self.gateway.monitoring_url + "/healthz",
                                  {"Range": f"bytes={ranges}"})
            self.assertEqual(status, expected, count)
            self.assertLess(len(body), 1024)  # no amplification (338 KB before)

    def test_two_thousand_idle_connections_do_not_stop_healthz(self):
        """What was seen: 2,000 idle connections made /healthz time out (each held one of the
        port's threads for its read timeout, first come first served)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 2200:
            self.skipTest(f"2,000 sockets need more descriptors than this host allows ({hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200) if hard == resource.RLIM_INFINITY
                                                    else max(soft, min(hard, 4096)), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        port = self.gateway.monitoring_port
        sockets = []
        try:
            for _ in range(2000):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))  # the kernel completes it; nothing is sent
                sockets.append(s)
            for attempt in range(3):
                started = time.monotonic()
                with urllib.request.urlopen(self.gateway.monitoring_url + "/healthz",
                                            timeout=20) as r:
                    self.assertEqual(r.status, 200)
                print(f"\n  /healthz with 2,000 idle connections open: "
                      f"{(time.monotonic() - started) * 1000:.0f} ms", end="")
        finally:
            for s in sockets:
                s.close()
        self.assert_gateway_alive()


class AdministratorTokensTest(harness.GatewayTestCase):
    """monitoring.token_dir: one token per administrator, with an expiry, issued and revoked
    without a restart; every view of /metrics and the dashboard, allowed or refused, is audited
    with who (the token's holder), from where and the outcome."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="rdg-test-")
        self.pki = harness.make_pki()
        self.tokens = os.path.join(self.workdir, "monitoring-tokens")
        self.issue("zhang.wei", 90)
        self.gateway = harness.Gateway(self.workdir, self.pki,
                                       f'monitoring {{ token_dir: "{self.tokens}" }}\n')
        self.gateway.start()

    def issue(self, name, days):
        proc = subprocess.run(["bash", os.path.join(harness.SOURCE_DIR,
                                                    "deploy/issue-monitoring-token.sh"),
                               name, str(days), self.tokens],
                              capture_output=True, text=True, check=True)
        return proc.stdout.splitlines()[1]

    def audited(self, action):
        return self.gateway.query("SELECT user, outcome, peer, subject, detail FROM audit_log "
                                  "WHERE action = ? ORDER BY seq", action)

    def test_each_administrator_has_a_token_that_expires_and_every_view_is_audited(self):
        url = self.gateway.monitoring_url
        zhang = harness.read_bytes(os.path.join(self.tokens, "zhang.wei.token")).decode().split()[0]
        self.assertEqual(os.stat(os.path.join(self.tokens, "zhang.wei.token")).st_mode & 0o777,
                         0o600)
        self.assertEqual(get(url + "/metrics", {"Authorization": "Bearer " + zhang})[0], 200)
        user, outcome, peer, subject, _ = self.audited("view_metrics")[-1]
        self.assertEqual((user, outcome, subject), ("zhang.wei", "", "token:zhang.wei"))
        self.assertRegex(peer, r"^ipv4:127\.0\.0\.1:\d+$")

        # The service token still works and is named by its file.
        service = self.gateway.monitoring_token
        self.assertEqual(get(url + "/metrics", {"Authorization": "Bearer " + service})[0], 200)
        self.assertEqual(self.audited("view_metrics")[-1][0], "monitoring")

        # Issued while the gateway runs: accepted within a second or two.
        li = self.issue("li.na", 30)
        harness.wait_for(lambda: get(url + "/metrics", {"Authorization": "Bearer " + li})[0] == 200,
                         timeout=5, what="a new administrator token accepted")
        # Expired: refused, and the refusal says so.
        path = os.path.join(self.tokens, "li.na.token")
        with open(path, "w") as f:
            f.write(li + "\nexpires: 2020-01-01T00:00:00Z\n")
        harness.wait_for(lambda: get(url + "/metrics", {"Authorization": "Bearer " + li})[0] == 403,
                         timeout=5, what="the expired token refused")
        status, _, body = get(url + "/metrics", {"Authorization": "Bearer " + li})
        self.assertIn("token expired at 2020-01-01T00:00:00Z", body)
        self.assertEqual(self.audited("view_metrics")[-1][:2], ("li.na", "PERMISSION_DENIED"))
        # Unknown, and none at all.
        self.assertEqual(get(url + "/metrics", {"Authorization": "Bearer " + "0" * 64})[0], 403)
        self.assertEqual(self.audited("view_metrics")[-1][1:2], ("PERMISSION_DENIED",))
        self.assertEqual(get(url + "/dashboard/data.json")[0], 401)
        self.assertEqual(self.audited("view_dashboard_data")[-1][1], "UNAUTHENTICATED")

        # The dashboard: the cookie lasts as long as the token; the page and its data audited.
        status, headers, _ = get(url + "/dashboard?token=" + zhang)
        self.assertEqual(status, 303)
        max_age = int(re.search(r"Max-Age=(\d+)", headers["Set-Cookie"]).group(1))
        self.assertAlmostEqual(max_age, 90 * 86400, delta=120)
        cookie = headers["Set-Cookie"].split(";")[0]
        self.assertEqual(get(url + "/dashboard", {"Cookie": cookie})[0], 200)
        self.assertEqual(get(url + "/dashboard/data.json", {"Cookie": cookie})[0], 200)
        for action in ("dashboard_sign_in", "view_dashboard", "view_dashboard_data"):
            self.assertEqual(self.audited(action)[-1][:2], ("zhang.wei", ""), action)

        # Files that are not right count for nothing: no expiry, readable by others, a
        # malformed neighbour (which must not keep a removed token alive either).
        def write(name, text, mode=0o600):
            path = os.path.join(self.tokens, name + ".token")
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, mode)
        forever, shared = "a" * 64, "b" * 64
        write("forever", forever + "\n")
        write("shared", shared + "\nexpires: 2099-01-01T00:00:00Z\n", 0o644)
        write("broken", "short\n")
        # Each request may re-read the directory (at most once a second); the log says why each
        # file is refused once it has.
        harness.wait_for(
            lambda: (get(url + "/metrics", {"Authorization": "Bearer " + forever})[0] == 403 and
                     "is readable by others" in self.gateway.log()),
            timeout=5, what="the malformed token files read and refused")
        self.assertIn("forever.token: no \"expires:\" line", self.gateway.log())
        for token in (forever, shared):
            self.assertEqual(get(url + "/metrics", {"Authorization": "Bearer " + token})[0], 403)
        # Revoked by removing the file.
        os.remove(os.path.join(self.tokens, "zhang.wei.token"))
        harness.wait_for(lambda: get(url + "/dashboard", {"Cookie": cookie})[0] == 403,
                         timeout=5, what="a removed token refused")


class MonitoringTlsTest(harness.GatewayTestCase):
    """monitoring { tls: true }: an administrator's client certificate is enough; every other
    role is refused with 403."""
    extra_config = 'monitoring { tls: true token_file: "var/pki/monitoring.token" }\n'

    def https(self, path, who=None, headers=None):
        context = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        if who:
            context.load_cert_chain(os.path.join(self.pki, who + ".pem"),
                                    os.path.join(self.pki, who + ".key"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.gateway.monitoring_port,
                                           context=context, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def test_admin_certificate_or_token(self):
        status, body = self.https("/metrics", "admin")
        self.assertEqual(status, 200)
        self.assertIn("rdg_build_info", body)
        for who in ("clinic-a1", "reader-a-rad", "reader-city-rad"):
            with self.subTest(who=who):
                self.assertEqual(self.https("/metrics", who)[0], 403)
                self.assertEqual(self.https("/dashboard", who)[0], 403)
        self.assertEqual(self.https("/metrics")[0], 401)
        token = self.gateway.monitoring_token
        self.assertEqual(self.https("/metrics", headers={"Authorization": "Bearer " + token})[0], 200)
        self.assertEqual(self.https("/healthz")[0], 200)
        with self.assertRaises((OSError, http.client.HTTPException)):  # no plain HTTP here
            get(f"http://127.0.0.1:{self.gateway.monitoring_port}/healthz")


if __name__ == "__main__":
    unittest.main()
