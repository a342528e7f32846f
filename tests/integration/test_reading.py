"""Reading workflow end to end: the real rdg-gateway, rdg-clinic and rdg-reader over mTLS on loopback.

Covers routing of every demo institution's exams to the reading queues (and the fallback queue),
worklist order by SLA due time and its filters, 32 readers racing for one claim, lease semantics
(renew, release, re-claim), fetch by the claim holder only (byte-identical, audited), and isolation
between counties and roles. Lease *expiry* needs the injected clock and is covered by the C++ unit
tests. Every wait is bounded; every file lives in a per-test temp dir.
"""
import calendar
import json
import os
import re
import secrets
import socket
import subprocess
import tempfile
import unittest

import grpc
import pydicom
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from pydicom.uid import generate_uid

import harness
from harness import read_bytes, write_dicom

PYDICOM = harness.PYDICOM_FILES
RECEIVED, ROUTED, CLAIMED, RELEASED = 1, 2, 3, 9  # rdg.v1.ExamState numbers in exam_events
MINUTE_US = 60 * 1000 * 1000
LEASE_SECONDS = 900  # claims { lease_seconds } of deploy/config/demo.textproto

# Extensions of the extra reader certificates made for the claim race (dev-pki.sh's reader
# transport profile).
EXTRA_READER_CNF = """\
[ req ]
distinguished_name = req_dn
[ req_dn ]
[ reader_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
"""


# ------------------------------------------------------------------------------------------------
# Helpers


def micros(timestamp):
    """Microseconds since the epoch of a protobuf JSON timestamp ("2026-01-02T03:04:05.123456Z")."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z", timestamp)
    if not m:
        raise ValueError(f"not an RFC 3339 UTC timestamp: {timestamp!r}")
    seconds = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    return seconds * 1000000 + int((m.group(7) or "").ljust(9, "0")) // 1000


_message_classes = {}


def rdg_message(full_name):
    """A message class of proto/rdg/v1/reading.proto (and its imports), built at run time from a
    protoc descriptor set: the tests need no generated Python code."""
    if not _message_classes:
        with tempfile.TemporaryDirectory(prefix="rdg-proto-") as tmp:
            out = os.path.join(tmp, "reading.desc")
            subprocess.run(["protoc", f"--proto_path={os.path.join(harness.SOURCE_DIR, 'proto')}",
                            *(["--proto_path=/usr/include"] if os.path.isdir("/usr/include/google/protobuf")
                              else []),
                            "--include_imports", f"--descriptor_set_out={out}", "rdg/v1/reading.proto"],
                           check=True, timeout=60)
            files = descriptor_pb2.FileDescriptorSet.FromString(read_bytes(out)).file
        pool = descriptor_pool.DescriptorPool()
        for f in files:
            pool.Add(f)
        get_class = getattr(message_factory, "GetMessageClass", None)
        factory = None if get_class else message_factory.MessageFactory(pool)
        for f in files:
            for name in pool.FindFileByName(f.name).message_types_by_name:
                d = pool.FindMessageTypeByName(f"{f.package}.{name}")
                _message_classes[d.full_name] = get_class(d) if get_class else factory.GetPrototype(d)
    return _message_classes[full_name]


def free_port():
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReadingTestCase(harness.GatewayTestCase):
    """Shared helpers over one test's gateway."""

    # The extra readers make_readers() issues read county A's imaging queue at a desk of their own.
    extra_config = """
desks {
  name: "county-a/extra-desk"
  institution: "county-a"
  queues: ["county-a/imaging"]
  readers: [%s]
}
""" % ", ".join(f'"reader-a-extra-{i:02d}"' for i in range(32))

    def setUp(self):
        super().setUp()
        self.inputs = os.path.join(self.workdir, "inputs")
        os.makedirs(self.inputs)

    def tmp(self, name):
        path = os.path.join(self.workdir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def dicom(self, source, modality=None, study_uid=None):
        """A copy of a pydicom test file with fresh UIDs (its own exam unless `study_uid` is given)
        and optionally another Modality; returns its path."""
        ds = pydicom.dcmread(os.path.join(PYDICOM, source))
        ds.StudyInstanceUID = study_uid or generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if modality:
            ds.Modality = modality
        return write_dicom(ds, os.path.join(self.inputs, f"{ds.SOPInstanceUID}.dcm"))

    def upload(self, clinic, *paths, priority=None):
        """Uploads `paths` as `clinic` in one rdg-clinic run; the exam id of each path, in order."""
        args = ["upload", *(["--priority", priority] if priority else []), *paths]
        out = self.clinic(clinic).json(*args, timeout=60)
        files = {os.path.abspath(f["path"]): f for f in out["files"]}
        ids = []
        for p in paths:
            f = files[os.path.abspath(p)]
            self.assertTrue(f["ok"], f)
            ids.append(f["exam_id"])
        return ids

    def clinic_exams(self, clinic):
        return {e["exam_id"]: e for e in self.clinic(clinic).json("exams", timeout=60).get("exams", [])}

    def reader(self, name, **kw):
        return harness.Reader(self.gateway, name, **kw)

    def worklist(self, reader, *args):
        """Worklist items of `reader` (a name or a harness.Reader), in the gateway's order."""
        if isinstance(reader, str):
            reader = self.reader(reader)
        return reader.json("worklist", *args, timeout=60).get("items", [])

    def worklist_ids(self, reader, *args):
        return [item["exam"]["exam_id"] for item in self.worklist(reader, *args)]

    def refused(self, reader, *args, code=1):
        """Runs rdg-reader, expects exit `code`; returns its stderr."""
        if isinstance(reader, str):
            reader = self.reader(reader)
        proc = reader.run(*args, timeout=60)
        self.assertEqual(proc.returncode, code,
                         f"rdg-reader {args}: exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stderr

    def events(self, exam_id):
        """(state, at, actor, detail) of every event of `exam_id`, in order."""
        return self.gateway.query(
            "SELECT state, at, actor, detail FROM exam_events WHERE exam_id = ? ORDER BY seq", exam_id)

    def grpc_code(self, name, method, request=b"", streaming=False):
        """Status code of one raw ReadingService call as certificate holder `name`."""
        with self.channel(name) as channel:
            try:
                call = harness.raw_stub(channel, f"/rdg.v1.ReadingService/{method}", streaming)(
                    request, timeout=30)
                if streaming:
                    list(call)
            except grpc.RpcError as err:
                return err.code(), err.details() or ""
        return grpc.StatusCode.OK, ""

    def make_readers(self, count, institution="county-a", prefix="reader-a-extra"):
        """`count` extra reader certificates signed by the test PKI's CA, made concurrently with
        openssl (ECDSA P-256, O=institution, OU=reader, CN=prefix-NN); returns (dir, names)."""
        out = self.tmp("extra-readers")
        cnf = os.path.join(out, "openssl.cnf")
        with open(cnf, "w") as f:
            f.write(EXTRA_READER_CNF)
        names = [f"{prefix}-{i:02d}" for i in range(count)]
        procs = [subprocess.Popen(
            ["openssl", "req", "-x509", "-new", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:P-256", "-pkeyopt", "ec_param_enc:named_curve",
             "-nodes", "-keyout", os.path.join(out, f"{n}.key"), "-out", os.path.join(out, f"{n}.pem"),
             "-subj", f"/O={institution}/OU=reader/CN={n}",
             "-CA", os.path.join(self.pki, "ca.pem"), "-CAkey", harness.ca_key(self.pki),
             "-config", cnf, "-extensions", "reader_ext", "-days", "2", "-sha256",
             "-set_serial", "0x" + secrets.token_hex(16)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in names]
        for n, p in zip(names, procs):
            log, _ = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, f"openssl for {n}: {log}")
        verify = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(self.pki, "ca.pem"),
                                 *(os.path.join(out, f"{n}.pem") for n in names)],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        return out, names


# ------------------------------------------------------------------------------------------------
# Tests


class ReadingTest(ReadingTestCase):

    # 1 ------------------------------------------------------------------------------------------
    def test_routing_of_each_institution(self):
        # (clinic, source file, Modality override, exam type, queue, rule, SLA minutes (ROUTINE))
        cases = {
            "a1-ct": ("clinic-a1", "CT_small.dcm", None, "CT", "county-a/imaging", "county-a-imaging", 1440),
            "a1-ecg": ("clinic-a1", "waveform_ecg.dcm", None, "ECG", "county-a/ecg", "county-a-ecg", 240),
            "a1-rtplan": ("clinic-a1", "rtplan.dcm", None, "RTPLAN", "province/unrouted", None, 1440),
            "a2-dx": ("clinic-a2", "CT_small.dcm", "DX", "DX", "county-a/imaging", "county-a-imaging", 1440),
            "van-mr": ("van-a1", "MR_small.dcm", None, "MR", "county-a/imaging", "county-a-imaging", 1440),
            "van-us": ("van-a1", "CT_small.dcm", "US", "US", "county-a/imaging", "county-a-imaging", 1440),
            "b1-ct": ("clinic-b1", "CT_small.dcm", None, "CT", "county-b/imaging", "county-b-imaging", 1440),
        }
        paths = {key: self.dicom(src, modality) for key, (_, src, modality, *_) in cases.items()}
        ids = {}
        for clinic in sorted({c[0] for c in cases.values()}):
            keys = [k for k, c in cases.items() if c[0] == clinic]
            ids.update(zip(keys, self.upload(clinic, *(paths[k] for k in keys))))
        self.assertEqual(len(set(ids.values())), len(cases), f"each upload is its own exam: {ids}")

        # The clinic's view: queue, state ROUTED, the rule's default priority.
        exams = {}
        for clinic in sorted({c[0] for c in cases.values()}):
            exams.update(self.clinic_exams(clinic))
        for key, (clinic, _, _, exam_type, queue, _, _) in cases.items():
            with self.subTest(exam=key):
                e = exams[ids[key]]
                self.assertEqual((e["origin_institution"], e["exam_type"], e["queue"], e["state"],
                                  e["priority"]), (clinic, exam_type, queue, "ROUTED", "ROUTINE"))

        # The readers' view: each reader sees exactly the exams of their desks' queues (county A:
        # a desk per department; county B: one reading room for all), nobody sees the unrouted
        # RTPLAN, the city's consultation queues are empty.
        def of_queue(prefix):
            return {ids[k] for k, c in cases.items() if c[4].startswith(prefix)}
        expected = {"reader-a-rad": of_queue("county-a/imaging"),
                    "reader-a-ecg-tls": of_queue("county-a/ecg"), "reader-a-lab": set(),
                    "reader-b-rad": of_queue("county-b/"), "reader-city-rad": set()}
        by_key = {v: k for k, v in ids.items()}
        for reader, want in expected.items():
            with self.subTest(reader=reader):
                items = self.worklist(reader)
                got = [i["exam"]["exam_id"] for i in items]
                self.assertEqual(len(got), len(set(got)), f"duplicates in {got}")
                self.assertEqual(set(got), want)
                for item in items:
                    key = by_key[item["exam"]["exam_id"]]
                    _, _, _, _, queue, _, minutes = cases[key]
                    self.assertEqual(item["exam"]["queue"], queue)
                    self.assertEqual(item["exam"]["state"], "ROUTED")
                    self.assertNotIn("claim", item)
                    self.assertEqual(micros(item["sla_due_at"]) - micros(item["exam"]["received_at"]),
                                     minutes * MINUTE_US, f"{key}: SLA due time")
                dues = [micros(i["sla_due_at"]) for i in items]
                self.assertEqual(dues, sorted(dues), "worklist ordered by SLA due time")

        # Claims follow the same lines: another county's exam, or an unrouted one, is NOT_FOUND.
        for reader, key in (("reader-a-rad", "b1-ct"), ("reader-b-rad", "a1-ct"),
                            ("reader-a-rad", "a1-rtplan"), ("reader-city-rad", "a1-ct"),
                            ("reader-a-rad", "a1-ecg"), ("reader-a-lab", "a1-ct")):
            with self.subTest(claim=(reader, key)):
                err = self.refused(reader, "claim", ids[key])
                self.assertIn(f"no exam {ids[key]} in the queues of", err)

        # Events: RECEIVED by the uploading clinic, then ROUTED by "system" naming the rule.
        for key, (clinic, _, _, _, queue, rule, _) in cases.items():
            with self.subTest(events=key):
                events = self.events(ids[key])
                self.assertEqual([e[0] for e in events], [RECEIVED, ROUTED], events)
                (_, received_at, received_by, _), (_, routed_at, routed_by, detail) = events
                self.assertEqual(received_by, clinic)
                self.assertEqual(received_at, micros(exams[ids[key]]["received_at"]))
                self.assertGreaterEqual(routed_at, received_at)
                self.assertEqual(routed_by, "system")
                self.assertIn(queue, detail)
                if rule:
                    self.assertIn(rule, detail)
                else:
                    self.assertIn("fallback", detail)

    def test_exam_carries_sla_due_at(self):
        """Exam.sla_due_at (common.proto: "final report due (unset: no SLA applies)") is set on the
        exam itself, in the clinic's exam list and in the worklist item's exam, and equals the
        worklist item's sla_due_at."""
        ecg, = self.upload("clinic-a1", self.dicom("waveform_ecg.dcm"), priority="STAT")
        exam = self.clinic_exams("clinic-a1")[ecg]
        item, = self.worklist("reader-a-ecg-tls")
        due = micros(exam["received_at"]) + 15 * MINUTE_US
        self.assertEqual(micros(item["sla_due_at"]), due)
        self.assertIn("sla_due_at", exam, "rdg-clinic exams: Exam.sla_due_at unset")
        self.assertEqual(micros(exam["sla_due_at"]), due)
        self.assertIn("sla_due_at", item["exam"], "rdg-reader worklist: item.exam.sla_due_at unset")
        self.assertEqual(micros(item["exam"]["sla_due_at"]), due)

    # 2 ------------------------------------------------------------------------------------------
    def test_worklist_order_and_filters(self):
        # County B's one reading room reads CT and ECG alike.
        routine_ct, = self.upload("clinic-b1", self.dicom("CT_small.dcm"))
        stat_ct, = self.upload("clinic-b1", self.dicom("CT_small.dcm"), priority="STAT")
        stat_ecg, = self.upload("clinic-b1", self.dicom("waveform_ecg.dcm"), priority="STAT")
        names = {routine_ct: "ROUTINE CT", stat_ct: "STAT CT", stat_ecg: "STAT ECG"}

        items = self.worklist("reader-b-rad")
        self.assertEqual([names.get(i["exam"]["exam_id"]) for i in items],
                         ["STAT ECG", "STAT CT", "ROUTINE CT"])
        want = {stat_ecg: ("STAT", "ECG", "county-b/ecg", 15),
                stat_ct: ("STAT", "CT", "county-b/imaging", 30),
                routine_ct: ("ROUTINE", "CT", "county-b/imaging", 1440)}
        for item in items:
            e = item["exam"]
            priority, exam_type, queue, minutes = want[e["exam_id"]]
            self.assertEqual((e["priority"], e["exam_type"], e["queue"]), (priority, exam_type, queue))
            self.assertEqual(micros(item["sla_due_at"]) - micros(e["received_at"]), minutes * MINUTE_US)

        # The table output lists the same order.
        text = self.reader("reader-b-rad").run("worklist", timeout=60)
        self.assertEqual(text.returncode, 0, text.stderr)
        rows = [line.split()[0] for line in text.stdout.splitlines()[1:] if line.strip()]
        self.assertEqual(rows, [stat_ecg, stat_ct, routine_ct], text.stdout)

        filters = [
            (["--priority", "STAT"], [stat_ecg, stat_ct]),
            (["--priority", "ROUTINE"], [routine_ct]),
            (["--priority", "URGENT"], []),
            (["--priority", "STAT", "ROUTINE"], [stat_ecg, stat_ct, routine_ct]),
            (["--modality", "CT"], [stat_ct, routine_ct]),
            (["--modality", "ECG"], [stat_ecg]),
            (["--modality", "MR"], []),
            (["--modality", "CT", "ECG"], [stat_ecg, stat_ct, routine_ct]),
            (["--modality", "CT", "--priority", "STAT"], [stat_ct]),
            (["--limit", "2"], [stat_ecg, stat_ct]),
            (["--state", "CLAIMED"], []),
        ]
        for args, expected in filters:
            with self.subTest(args=args):
                self.assertEqual(self.worklist_ids("reader-b-rad", *args), expected)

        # A claimed exam keeps its place in the default worklist and answers --state CLAIMED.
        self.reader("reader-b-rad").json("claim", stat_ct, timeout=60)
        items = self.worklist("reader-b-rad")
        self.assertEqual([i["exam"]["exam_id"] for i in items], [stat_ecg, stat_ct, routine_ct])
        self.assertEqual(items[1]["exam"]["state"], "CLAIMED")
        self.assertEqual(items[1]["claim"]["holder_user"], "reader-b-rad")
        self.assertEqual(self.worklist_ids("reader-b-rad", "--state", "CLAIMED"), [stat_ct])
        self.assertEqual(self.worklist_ids("reader-b-rad", "--state", "ROUTED"), [stat_ecg, routine_ct])
        self.assertEqual(self.worklist_ids("reader-b-rad", "--state", "ROUTED", "--modality", "CT"),
                         [routine_ct])

    def test_worklist_pages(self):
        """GetWorklist's page_size/page_token (the CLI reads one page): walking the pages gives the
        full, ordered list once, with and without filters."""
        ids = self.upload("clinic-b1", *(self.dicom("CT_small.dcm") for _ in range(3)))
        ids += self.upload("clinic-b1", self.dicom("CT_small.dcm"), self.dicom("MR_small.dcm"),
                           priority="STAT")
        ids += self.upload("clinic-b1", self.dicom("waveform_ecg.dcm"),
                           self.dicom("CT_small.dcm", "US"), priority="URGENT")
        self.assertEqual(len(set(ids)), 7)
        self.reader("reader-b-rad").json("claim", ids[0], timeout=60)
        Request = rdg_message("rdg.v1.WorklistRequest")
        Response = rdg_message("rdg.v1.WorklistResponse")

        def walk(page_size, **filters):
            got, token = [], ""
            with self.channel("reader-b-rad") as channel:
                call = harness.raw_stub(channel, "/rdg.v1.ReadingService/GetWorklist")
                for _ in range(20):
                    page = Response.FromString(call(Request(page_size=page_size, page_token=token,
                                                            **filters).SerializeToString(), timeout=30))
                    self.assertLessEqual(len(page.items), page_size)
                    got += [i.exam.exam_id for i in page.items]
                    token = page.next_page_token
                    if not token:
                        return got
            self.fail(f"page_size {page_size}: no last page after 20 pages: {got}")

        full = self.worklist_ids("reader-b-rad")
        self.assertEqual(sorted(full), sorted(ids))
        self.assertEqual(walk(100), full)
        for size in (1, 2, 3):
            with self.subTest(page_size=size):
                self.assertEqual(walk(size), full)
        ct = self.worklist_ids("reader-b-rad", "--modality", "CT")
        self.assertEqual(len(ct), 4)
        self.assertEqual(walk(1, modalities=["CT"]), ct)
        stat = self.worklist_ids("reader-b-rad", "--priority", "STAT")
        self.assertEqual(sorted(stat), sorted(ids[3:5]))
        self.assertEqual(walk(1, priorities=[1]), stat)  # STAT

    # 3 ------------------------------------------------------------------------------------------
    def test_concurrent_claims_one_winner(self):
        exam_id, = self.upload("clinic-a1", self.dicom("CT_small.dcm"))
        pki, names = self.make_readers(32)
        readers = [self.reader(n, pki=pki) for n in names]
        procs = [r.popen("--json", "claim", exam_id) for r in readers]  # all in flight at once
        results = []
        for name, p in zip(names, procs):
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                for q in procs:
                    if q.poll() is None:
                        q.kill()
                        q.wait()
                raise
            results.append((name, p.returncode, out, err))

        winners = [r for r in results if r[1] == 0]
        self.assertEqual(len(winners), 1, [(n, c, e.strip()) for n, c, _, e in results])
        winner, _, out, _ = winners[0]
        claim = json.loads(out)
        self.assertEqual((claim["exam_id"], claim["holder_user"], claim["holder_institution"]),
                         (exam_id, winner, "county-a"))
        self.assertEqual(micros(claim["expires_at"]) - micros(claim["claimed_at"]),
                         LEASE_SECONDS * 1000000)
        for name, code, _, err in results:
            if name == winner:
                continue
            with self.subTest(loser=name):
                self.assertEqual(code, 1, err)
                self.assertIn(f"claimed by {winner}", err)
        print(f"\n  winner {winner}; a loser said: {[r[3] for r in results if r[1] == 1][0].strip()}")

        claimed = [e for e in self.events(exam_id) if e[0] == CLAIMED]
        self.assertEqual(len(claimed), 1, claimed)
        self.assertEqual(claimed[0][2], winner)
        self.assertEqual(self.gateway.query(
            "SELECT holder_user, holder_institution FROM claims WHERE exam_id = ?", exam_id),
            [(winner, "county-a")])
        item, = self.worklist("reader-a-rad")
        self.assertEqual((item["exam"]["state"], item["claim"]["holder_user"]), ("CLAIMED", winner))

    # 4 ------------------------------------------------------------------------------------------
    def test_lease_renew_release_reclaim(self):
        exam_id, = self.upload("clinic-a1", self.dicom("CT_small.dcm"))
        rad, lab = self.reader("reader-a-rad"), self.reader("reader-a-rad2")

        first = rad.json("claim", exam_id, timeout=60)
        self.assertEqual((first["exam_id"], first["holder_user"], first["holder_institution"]),
                         (exam_id, "reader-a-rad", "county-a"))
        self.assertEqual(micros(first["expires_at"]) - micros(first["claimed_at"]), LEASE_SECONDS * 1000000)
        item, = self.worklist(rad)
        self.assertEqual(item["exam"]["state"], "CLAIMED")
        self.assertEqual(item["claim"]["holder_user"], "reader-a-rad")
        self.assertEqual(micros(item["claim"]["expires_at"]), micros(first["expires_at"]))

        # The holder claiming again renews the lease.
        again = rad.json("claim", exam_id, timeout=60)
        self.assertEqual(again["holder_user"], "reader-a-rad")
        self.assertGreater(micros(again["expires_at"]), micros(first["expires_at"]))
        renewed = rad.json("renew", exam_id, timeout=60)
        self.assertEqual(renewed["holder_user"], "reader-a-rad")
        self.assertGreater(micros(renewed["expires_at"]), micros(again["expires_at"]))

        # Another reader can neither take, renew nor release it.
        for verb in ("claim", "renew", "release"):
            with self.subTest(non_holder=verb):
                err = self.refused(lab, "--json", verb, exam_id)
                if verb != "release":
                    self.assertIn("claimed by reader-a-rad", err)
        item, = self.worklist(rad)
        self.assertEqual((item["exam"]["state"], item["claim"]["holder_user"]), ("CLAIMED", "reader-a-rad"))

        # The holder releases it: back in the queue, unclaimed, a RELEASED event by the reader.
        rad.json("release", exam_id, timeout=60)
        item, = self.worklist(lab)
        self.assertEqual(item["exam"]["state"], "ROUTED")
        self.assertNotIn("claim", item)
        self.assertEqual(self.worklist_ids(lab, "--state", "CLAIMED"), [])
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM claims WHERE exam_id = ?", exam_id), [(0,)])
        for verb in ("release", "renew"):
            with self.subTest(former_holder=verb):
                self.refused(rad, verb, exam_id)

        # Someone else claims it now.
        taken = lab.json("claim", exam_id, timeout=60)
        self.assertEqual(taken["holder_user"], "reader-a-rad2")
        err = self.refused(rad, "claim", exam_id)
        self.assertIn("claimed by reader-a-rad2", err)

        # Renewals may or may not be recorded as events of their own; drop repeats to compare.
        events = []
        for state, _, actor, _ in self.events(exam_id):
            if not events or events[-1] != (state, actor):
                events.append((state, actor))
        self.assertEqual(events, [(RECEIVED, "clinic-a1"), (ROUTED, "system"), (CLAIMED, "reader-a-rad"),
                                  (RELEASED, "reader-a-rad"), (CLAIMED, "reader-a-rad2")])
        ats = [at for _, at, _, _ in self.events(exam_id)]
        self.assertEqual(ats, sorted(ats))

    # 5 ------------------------------------------------------------------------------------------
    def test_fetch_by_claim_holder_only(self):
        study = generate_uid()
        paths = [self.dicom("CT_small.dcm", study_uid=study) for _ in range(2)]
        ids = self.upload("clinic-a1", *paths)
        self.assertEqual(ids[0], ids[1], "two instances of one study are one exam")
        exam_id = ids[0]
        rad, lab = self.reader("reader-a-rad"), self.reader("reader-a-rad2")

        before = self.tmp("before-claim")
        err = self.refused(rad, "fetch", exam_id, "--out", before)
        self.assertIn("claim", err)
        self.assertEqual(os.listdir(before), [])

        rad.json("claim", exam_id, timeout=60)
        other = self.tmp("other-reader")
        err = self.refused(lab, "fetch", exam_id, "--out", other)
        self.assertEqual(os.listdir(other), [])

        out = self.tmp("holder")
        result = rad.json("fetch", exam_id, "--out", out, timeout=60)
        want = {os.path.basename(p): read_bytes(p) for p in paths}  # named <SOP UID>.dcm
        self.assertEqual(sorted(os.listdir(out)), sorted(want))
        for name, data in want.items():
            self.assertEqual(read_bytes(os.path.join(out, name)), data, f"{name} byte-identical")
        self.assertEqual(result["exam_id"], exam_id)
        self.assertEqual(result["bytes"], sum(len(d) for d in want.values()))
        self.assertEqual(sorted(f["sop_instance_uid"] + ".dcm" for f in result["files"]), sorted(want))

        audited = self.gateway.query(
            "SELECT institution, user FROM audit_log WHERE action = 'fetch_exam' AND exam_id = ?", exam_id)
        self.assertIn(("county-a", "reader-a-rad"), audited)

        # After release the former holder may not fetch any more.
        rad.json("release", exam_id, timeout=60)
        after = self.tmp("after-release")
        self.refused(rad, "fetch", exam_id, "--out", after)
        self.assertEqual(os.listdir(after), [])

    # 6 ------------------------------------------------------------------------------------------
    def test_isolation_between_counties_and_roles(self):
        exam_id, = self.upload("clinic-a1", self.dicom("CT_small.dcm"))
        patient = pydicom.dcmread(os.path.join(PYDICOM, "CT_small.dcm")).PatientName
        b = self.reader("reader-b-rad")
        self.assertEqual(self.worklist(b), [])
        self.assertEqual(self.worklist("reader-city-rad"), [])

        def not_found(reader, *args):
            err = self.refused(reader, *args)
            self.assertIn(exam_id, err)
            self.assertNotIn(str(patient), err)
            return err

        for stage in ("unclaimed", "claimed by reader-a-rad"):
            with self.subTest(stage=stage):
                for verb in ("claim", "renew", "release"):
                    err = not_found(b, verb, exam_id)
                    self.assertIn("county-b", err)
                    self.assertNotIn("reader-a-rad", err)
                out = self.tmp(f"b-fetch-{len(stage)}")
                not_found(b, "fetch", exam_id, "--out", out)
                self.assertEqual(os.listdir(out), [])
                not_found("reader-city-rad", "claim", exam_id)
                self.assertEqual(self.worklist(b), [])
                for method, streaming in (("ClaimExam", False), ("FetchExam", True)):
                    code, details = self.grpc_code("reader-b-rad", method, harness.string_field(1, exam_id),
                                                   streaming)
                    self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
            if stage == "unclaimed":
                self.reader("reader-a-rad").json("claim", exam_id, timeout=60)
        self.assertNotIn("reader-b-rad", [e[2] for e in self.events(exam_id)])
        self.assertEqual(self.gateway.query("SELECT holder_user FROM claims WHERE exam_id = ?", exam_id),
                         [("reader-a-rad",)])

        # Unknown exam ids are NOT_FOUND for a reader of the right county too.
        self.refused("reader-a-rad", "claim", "ex-0000000000000000")

        # Clinics and admins are not readers.
        for who, role in (("clinic-a1", "CLINIC"), ("admin", "ADMIN")):
            with self.subTest(role=who):
                user = self.reader(who)
                err = self.refused(user, "--json", "worklist")
                self.assertIn(role, err)
                self.refused(user, "claim", exam_id)
                out = self.tmp(f"{who}-fetch")
                self.refused(user, "fetch", exam_id, "--out", out)
                self.assertEqual(os.listdir(out), [])
                for method, request, streaming in (
                        ("GetWorklist", b"", False),
                        ("ClaimExam", harness.string_field(1, exam_id), False),
                        ("FetchExam", harness.string_field(1, exam_id), True)):
                    code, details = self.grpc_code(who, method, request, streaming)
                    self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, f"{method}: {details}")

        # A gateway that is not there: exit 2.
        gone = self.reader("reader-a-rad")
        gone.env["RDG_GATEWAY"] = f"127.0.0.1:{free_port()}"
        self.refused(gone, "worklist", code=2)


if __name__ == "__main__":
    unittest.main()
