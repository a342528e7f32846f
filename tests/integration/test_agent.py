"""The clinic edge agent (`rdg-clinic agent`) against the real gateway, driven by tools nobody here
wrote: DCMTK's storescu and echoscu, python3-hl7's mllp_send. Everything a device was told is
stored reaches the gateway exactly once and byte-identical, through a gateway outage and a
SIGKILL of the agent; what the gateway refuses lands in dead-letter with the reason; reports come
back into the inbox folder, verified."""
import concurrent.futures
import glob
import hashlib
import io
import os
import shutil
import subprocess
import time
import unittest

import pydicom
from pydicom.uid import generate_uid

import harness
import lab_corpus

FILES = harness.PYDICOM_FILES
# Real files of several storage classes (CT, MR, 12-lead ECG, secondary capture), uncompressed
# ones over one association, and compressed ones each in their own transfer syntax, as a device
# proposes it (storescu offers one compressed syntax per run).
DEVICE_FILES = ["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm", "MR_small_bigendian.dcm"]
COMPRESSED = [("-xy", "SC_rgb_jpeg_dcmtk.dcm"), ("-xr", "MR_small_RLE.dcm"),
              ("-xv", "MR_small_jp2klossless.dcm"), ("-xw", "JPEG2000.dcm")]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(*argv, **kw):
    env = dict(os.environ, TCP_NODELAY="1")
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env, **kw)


def open_association(port, called, calling):
    """A socket holding an accepted DICOM association (Verification), made by hand: an
    A-ASSOCIATE-RQ PDU (PS3.8 9.3.2), then the A-ASSOCIATE-AC read back."""
    import socket
    import struct

    def item(kind, body):
        return struct.pack(">BBH", kind, 0, len(body)) + body

    uid = lambda u: u.encode()
    pc = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, uid("1.2.840.10008.1.1")) +
              item(0x40, uid("1.2.840.10008.1.2")))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) +
                item(0x52, uid("1.2.826.0.1.3680043.2.1143")))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() +
            bytes(32) + item(0x10, uid("1.2.840.10008.3.1.1.1")) + pc + user)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(struct.pack(">BBI", 0x01, 0, len(body)) + body)
    answer = sock.recv(6)
    if not answer or answer[0] != 0x02:
        sock.close()
        raise AssertionError(f"association not accepted: {answer!r}")
    return sock


class AgentTest(harness.GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.agent = harness.Agent(self.workdir, self.gateway)

    def tearDown(self):
        try:
            if self.agent.proc is not None and self.agent.proc.poll() is not None:
                print(f"\nagent died on its own ({self.agent.proc.returncode}):\n"
                      f"{self.agent.log()[-3000:]}")
            self.agent.stop()
        finally:
            super().tearDown()

    # --- helpers -----------------------------------------------------------------------------

    def copies(self, n, source="CT_small.dcm"):
        """`n` copies of a pydicom file as distinct instances (new UIDs), one study."""
        study = generate_uid()
        paths = []
        for i in range(n):
            ds = pydicom.dcmread(os.path.join(FILES, source))
            ds.StudyInstanceUID = study
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = i + 1
            paths.append(harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm")))
        return paths

    def unique(self, name):
        """pydicom's file `name`, or a copy with a SOP Instance UID of its own when another test
        file shares its UID (the MR_small variants do); bytes otherwise as they are."""
        path = os.path.join(FILES, name)
        if not name.startswith("MR_small_"):
            return path
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        return harness.write_dicom(ds, os.path.join(self.workdir, name))

    def stored(self):
        """SOP Instance UID → (sha256, kind) of every object the gateway stored for clinic-a1."""
        rows = self.gateway.query("SELECT sop_instance_uid, sha256, kind FROM objects "
                                  "WHERE origin_institution = 'clinic-a1'")
        return {uid: (sha, kind) for uid, sha, kind in rows}

    def blobs(self):
        """sha256 → path of every blob the gateway holds."""
        return {os.path.basename(p).split(".")[0]: p for p in self.gateway.blob_files()}

    def assert_arrived_identical(self, device_files):
        """Each device file is stored once, and byte-identical to what the agent received (the
        sha256 the agent recorded at C-STORE time is the gateway's). Against the device's file:
        the same data set always, and the same bytes whenever storescu sent the file's own
        encoding (it may re-encode sequence lengths and value representations). Returns the names
        of the files storescu re-encoded."""
        stored = self.stored()
        received = {label: sha.hex() for label, sha in self.agent.rows(
            "SELECT label, sha256 FROM outbox WHERE kind = 1 AND state = 'sent'")}
        reencoded = []
        blobs = self.blobs()
        for path in device_files:
            original = read(path)
            ds = pydicom.dcmread(path)
            uid = str(ds.SOPInstanceUID)
            self.assertIn(uid, stored, path)
            got = read(blobs[stored[uid][0]])
            self.assertEqual(hashlib.sha256(got).hexdigest(), stored[uid][0])
            self.assertEqual(received.get(uid), stored[uid][0], path)
            mine = pydicom.dcmread(io.BytesIO(got))
            for elem in ds:  # the data set, element by element (trailing padding may go)
                if elem.tag != 0xFFFCFFFC:
                    self.assertEqual(mine[elem.tag].value, elem.value, f"{path} {elem.tag}")
            if harness.dicom_dataset_bytes(got) != harness.without_trailing_padding(
                    harness.dicom_dataset_bytes(original)):
                reencoded.append(os.path.basename(path))
        return reencoded

    # --- tests -------------------------------------------------------------------------------

    def test_devices_protocols_arrive_exactly_once_and_byte_identical(self):
        self.agent.start()
        port = str(self.agent.dicom_port)
        self.assertEqual(run("echoscu", "-aec", "RDG-AGENT", "127.0.0.1", port).returncode, 0)
        wrong_called = run("echoscu", "-aec", "SOMEONE-ELSE", "127.0.0.1", port)
        self.assertNotEqual(wrong_called.returncode, 0)

        # One association with several files, then three associations at once.
        one = [self.unique(f) for f in DEVICE_FILES]
        self.agent.storescu(*one)
        compressed = []
        for option, name in COMPRESSED:
            compressed.append(self.unique(name))
            self.agent.storescu(compressed[-1], options=[option])
        copies = self.copies(12)
        batches = [copies[i::3] for i in range(3)]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            for proc in pool.map(lambda b: self.agent.storescu(*b), batches):
                self.assertEqual(proc.returncode, 0)
        # Lab messages over MLLP: one ACK each, AA after the agent stored them.
        messages = [lab_corpus.message("AGT-1", lab_corpus.NORMAL_PANEL),
                    lab_corpus.message("AGT-2", lab_corpus.CRITICAL_POTASSIUM, patient="PAT-2")]
        framed = os.path.join(self.workdir, "lab.hl7")
        with open(framed, "wb") as f:
            f.write(lab_corpus.mllp(*messages))
        acks = self.agent.mllp_send(framed)
        self.assertEqual(len(acks), 2, acks)
        for ack, control_id in zip(acks, ["AGT-1", "AGT-2"]):
            self.assertIn(f"MSA|AA|{control_id}", ack)

        device_files = one + compressed + [p for b in batches for p in b]
        total = len(device_files) + len(messages)
        status = self.agent.wait_drained(total)
        self.assertEqual((status["sent"], status["dead_letter"]), (total, 0), status)
        stored = self.stored()
        self.assertEqual(len(stored), total)  # exactly once: one row per instance, no extras
        reencoded = self.assert_arrived_identical(device_files)
        # storescu re-encodes three on the way (the agent stores what it receives): pydicom's ECG
        # (undefined-length sequences get explicit lengths) and the two JPEG 2000 files; every
        # other file, JPEG baseline and RLE included, arrived in its own bytes.
        self.assertEqual(sorted(reencoded),
                         ["JPEG2000.dcm", "MR_small_jp2klossless.dcm", "waveform_ecg.dcm"])
        # Lab messages byte-identical to what mllp_send sent (it strips the frame and final CR).
        lab = sorted(sha for sha, kind in stored.values() if kind == 2)
        self.assertEqual(lab, sorted(hashlib.sha256(m.strip(b"\r")).hexdigest() for m in messages))
        # The forwarding history: one attempt per object, nothing sent twice.
        self.assertEqual(self.agent.rows("SELECT count(*), max(attempts) FROM outbox "
                                         "WHERE state = 'sent'"), [(total, 1)])

    def test_calling_ae_not_allowed_is_refused(self):
        text = read(self.agent.config_path).decode().replace(
            'ae_title: "RDG-AGENT" }', 'ae_title: "RDG-AGENT" allowed_calling_ae_titles: "XRAY-1" }')
        with open(self.agent.config_path, "w") as f:
            f.write(text)
        self.agent.start()
        ct = os.path.join(FILES, "CT_small.dcm")
        refused = self.agent.storescu(ct, calling="INTRUDER", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.agent.storescu(ct, calling="XRAY-1")
        self.agent.wait_drained(1)
        self.assertEqual(len(self.stored()), 1)

    def test_associations_beyond_the_limit_are_refused_not_queued(self):
        text = read(self.agent.config_path).decode().replace(
            'ae_title: "RDG-AGENT" }', 'ae_title: "RDG-AGENT" max_associations: 1 }')
        with open(self.agent.config_path, "w") as f:
            f.write(text)
        self.agent.start()
        held = open_association(self.agent.dicom_port, "RDG-AGENT", "HOLDER")
        try:
            busy = run("echoscu", "-aec", "RDG-AGENT", "127.0.0.1", str(self.agent.dicom_port))
            self.assertNotEqual(busy.returncode, 0)
            self.assertIn("Local Limit Exceeded", busy.stderr + busy.stdout)
        finally:
            held.close()
        harness.wait_for(lambda: run("echoscu", "-aec", "RDG-AGENT", "127.0.0.1",
                                     str(self.agent.dicom_port)).returncode == 0,
                         30, what="the slot freed")

    def test_idle_and_trickling_connections_do_not_lock_devices_out(self):
        """What was seen (issue 13): the accept path held a global lock across DCMTK's 30 s wait
        for the A-ASSOCIATE-RQ, so 3 idle TCP connections refused echoscu for ~91 s; 200 idle
        connections made 214 threads. Now echoscu, storescu and a lab sender go through with
        200 idle and 8 trickling DICOM and 8 trickling MLLP connections open."""
        import socket
        self.agent.start()
        port = self.agent.dicom_port
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
        # Trickling: the start of an A-ASSOCIATE-RQ, then nothing more.
        trickling = []
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"\x01\x00\x00\x00\x00\xcd\x00\x01")  # 205 bytes announced, 2 sent
            trickling.append(s)
        # ... and on the MLLP port, 8 connections inside a message that never ends.
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", self.agent.hl7_port), timeout=10)
            s.sendall(b"\x0bMSH|^~\\&|")
            trickling.append(s)
        lab = os.path.join(self.workdir, "lab.hl7")
        with open(lab, "wb") as f:
            f.write(lab_corpus.mllp(lab_corpus.message("IDLE-1", lab_corpus.NORMAL_PANEL)))
        ct = self.copies(1)
        try:
            took = {}
            started = time.monotonic()
            echo = run("echoscu", "-to", "10", "-ta", "10", "-aec", "RDG-AGENT", "127.0.0.1",
                       str(port))
            took["echoscu"] = time.monotonic() - started
            self.assertEqual(echo.returncode, 0, echo.stdout + echo.stderr)
            started = time.monotonic()
            self.agent.storescu(*ct)
            took["storescu"] = time.monotonic() - started
            started = time.monotonic()
            ack = self.agent.mllp_send(lab)
            took["mllp_send"] = time.monotonic() - started
            self.assertIn("MSA|AA|IDLE-1", ack[0])
            threads = harness.proc_status_kb(self.agent.proc.pid, "Threads")
            print(f"\n  with 200 idle and 8 trickling DICOM connections and 8 trickling MLLP "
                  f"connections open: " + ", ".join(f"{k} {v:.2f} s" for k, v in took.items()) +
                  f"; agent threads {threads}")
            # None waited for the idle or trickling connections (each would cost the 10 s
            # association deadline or more).
            self.assertLess(max(took.values()), 10)
            # At most dicom.max_connections (64) and hl7.max_connections (8) connection threads,
            # plus the agent's own.
            self.assertLess(threads, 64 + 8 + 40)
        finally:
            for s in idle + trickling:
                s.close()
        self.agent.wait_drained(2)

    def test_trickling_and_idle_mllp_connections_do_not_lock_lab_senders_out(self):
        """What was seen (issue 13): 8 idle or byte-trickling MLLP connections (the idle timeout
        was 10 minutes and reset by any byte) locked out every lab sender."""
        import socket
        import threading
        self.agent.start()
        port = self.agent.hl7_port
        stop = threading.Event()
        connections = []

        def trickle(sock):  # a message that never ends: one byte every 0.2 s
            try:
                sock.sendall(b"\x0bMSH|")
                while not stop.wait(0.2):
                    sock.sendall(b"A")
            except OSError:
                pass
        for _ in range(8):  # hl7.max_connections (8) of them
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            connections.append(s)
            threading.Thread(target=trickle, args=(s,), daemon=True).start()
        connections += [socket.create_connection(("127.0.0.1", port), timeout=10)
                        for _ in range(8)]
        try:
            path = os.path.join(self.workdir, "lab.hl7")
            with open(path, "wb") as f:
                f.write(lab_corpus.mllp(lab_corpus.message("TRICKLE-1", lab_corpus.NORMAL_PANEL)))
            started = time.monotonic()
            acks = self.agent.mllp_send(path)
            took = time.monotonic() - started
            print(f"\n  mllp_send with 8 trickling and 8 idle connections open: {took:.2f} s")
            self.assertIn("MSA|AA|TRICKLE-1", acks[0])
        finally:
            stop.set()
            for s in connections:
                s.close()
        self.agent.wait_drained(1)

    def test_gateway_down_devices_still_succeed_and_outbox_drains_when_it_returns(self):
        # Short retry pauses, so that the outbox drains soon after the gateway is back.
        self.agent.write_config("forwarder { initial_backoff_ms: 50 max_backoff_ms: 1000 }\n")
        self.agent.start()
        self.gateway.stop()
        files = self.copies(12)
        self.agent.storescu(*files)
        framed = os.path.join(self.workdir, "lab.hl7")
        with open(framed, "wb") as f:
            f.write(lab_corpus.mllp(lab_corpus.message("DOWN-1", lab_corpus.NORMAL_PANEL)))
        self.assertIn("MSA|AA|DOWN-1", self.agent.mllp_send(framed)[0])
        status = harness.wait_for(lambda: (lambda s: s if s["last_error"] else None)(
            self.agent.status()), 30, what="a forwarding error")
        self.assertEqual(status["pending"], 13, status)
        self.assertIn("UNAVAILABLE", status["last_error"])
        self.assertGreater(status["pending_bytes"], 12 * 39000)
        self.gateway.start()  # same port
        self.agent.wait_drained(13)
        self.assertEqual(len(self.stored()), 13)
        self.assert_arrived_identical(files)

    def test_sigkill_mid_forwarding_loses_and_duplicates_nothing(self):
        # A slow link (capped at 100 kB/s) so that the kill lands mid-way.
        self.agent.write_config("forwarder { parallel: 2 max_bytes_per_second: 100000 "
                                "initial_backoff_ms: 50 max_backoff_ms: 1000 }\n")
        self.agent.start()
        files = self.copies(30)
        self.agent.storescu(*files)  # every one acknowledged: they are the agent's to deliver
        harness.wait_for(lambda: self.agent.status()["sent"] >= 3, 60, what="some forwarded")
        self.assertEqual(self.agent.kill(), -9)
        before = self.agent.status()
        self.assertGreater(before["pending"], 0, before)
        self.agent.write_config()  # no cap after the restart
        self.agent.start()
        self.agent.wait_drained(30)
        stored = self.stored()
        self.assertEqual(len(stored), 30)
        self.assert_arrived_identical(files)
        self.assertEqual(self.agent.rows("SELECT count(*) FROM outbox WHERE state = 'sent'"),
                         [(30,)])
        self.assertEqual(os.listdir(os.path.join(self.agent.data_dir, "outbox", "objects")), [])

    def test_cut_connection_resumes_from_the_committed_offset(self):
        proxy = harness.FlakyProxy(self.gateway.port)
        self.addCleanup(proxy.close)
        self.agent = harness.Agent(self.workdir, self.gateway, gateway_address=proxy.address)
        self.agent.start()
        big = self.big_ct()
        proxy.cut_next(3 << 20)  # the link breaks 3 MiB into the upload
        self.agent.storescu(big)
        self.agent.wait_drained(1)
        [(attempts, resumed_from, bytes_sent, size)] = self.agent.rows(
            "SELECT attempts, resumed_from, bytes_sent, size FROM outbox")
        print(f"\n  object {size} B, link cut after 3 MiB ({proxy.cuts} cut), resumed from "
              f"{resumed_from}, sent again {bytes_sent} B; {proxy.bytes_up} B went up in all")
        self.assertEqual(proxy.cuts, 1)
        self.assertGreaterEqual(attempts, 2)  # more while the gateway still holds the old stream
        self.assertGreater(resumed_from, 0)
        self.assertEqual(bytes_sent, size - resumed_from)
        # What went up: the 3 MiB before the cut, then only what was not committed (plus TLS and
        # HTTP/2 framing) — never the object again from zero.
        self.assertLess(proxy.bytes_up, (3 << 20) + size - resumed_from + (256 << 10))
        self.assert_arrived_identical([big])

    def big_ct(self, side=2048):
        ds = pydicom.dcmread(os.path.join(FILES, "CT_small.dcm"))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Rows = ds.Columns = side
        ds.PixelData = os.urandom(side * side * 2)
        return harness.write_dicom(ds, os.path.join(self.workdir, f"{ds.SOPInstanceUID}.dcm"))

    def test_restart_resumes_a_partly_sent_object_from_the_committed_offset(self):
        self.agent.write_config("forwarder { max_bytes_per_second: 2000000 "
                                "initial_backoff_ms: 50 max_backoff_ms: 1000 }\n")
        self.agent.start()
        big = self.big_ct()
        self.agent.storescu(big)

        def part_file_grew():
            sizes = [os.path.getsize(p) for p in self.gateway.upload_files()]
            return sizes and max(sizes) >= 2 << 20
        harness.wait_for(part_file_grew, 30, what="2 MiB staged at the gateway")
        self.assertEqual(self.agent.kill(), -9)
        [(session,)] = self.agent.rows("SELECT session_id FROM outbox")
        self.assertTrue(session)  # kept durably: the restart knows where to resume
        self.agent.write_config()
        self.agent.start()
        self.agent.wait_drained(1)
        [(resumed_from, bytes_sent, size)] = self.agent.rows(
            "SELECT resumed_from, bytes_sent, size FROM outbox")
        print(f"\n  object {size} B, agent killed; after the restart resumed from {resumed_from}, "
              f"sent {bytes_sent} B")
        self.assertGreaterEqual(resumed_from, 1 << 20)
        self.assertEqual(bytes_sent, size - resumed_from)
        self.assert_arrived_identical([big])

    def test_flaky_network_500_instances_arrive_intact(self):
        import random
        rng = random.Random(20261123)
        # Every connection dies after 0.3–3 MB up; every fourth first stalls for half a second.
        proxy = harness.FlakyProxy(self.gateway.port,
                                   budget=lambda: rng.randint(300_000, 3_000_000),
                                   stall_every=4, stall_seconds=0.5)
        self.addCleanup(proxy.close)
        self.agent = harness.Agent(self.workdir, self.gateway, gateway_address=proxy.address)
        self.agent.start()
        files = self.copies(500)
        self.agent.storescu(*files)
        status = self.agent.wait_drained(500, timeout=400)
        print(f"\n  500 instances through {proxy.connections} connections, {proxy.cuts} cut; "
              f"{proxy.bytes_up} B up for {status['sent_bytes']} B of objects")
        self.assertGreater(proxy.cuts, 3)
        self.assertEqual((status["sent"], status["dead_letter"]), (500, 0))
        self.assertEqual(len(self.stored()), 500)
        self.assert_arrived_identical(files)

    def test_refused_objects_land_in_dead_letter_with_the_reason(self):
        """What only the gateway can decide (an identity already taken by other bytes) ends in
        the dead-letter folder with the reason; what the agent's own checks catch never gets
        there (test_hostile_input.AgentHostileInputTest)."""
        self.agent.start()
        # The clinic uploaded a CT directly; a device then sends other bytes under its SOP
        # Instance UID: a fine object for the agent, ALREADY_EXISTS at the gateway.
        self.clinic("clinic-a1").json("upload", os.path.join(FILES, "CT_small.dcm"))
        ds = pydicom.dcmread(os.path.join(FILES, "CT_small.dcm"))
        ds.StudyDescription = "changed after the first upload"
        bad = harness.write_dicom(ds, os.path.join(self.workdir, "changed-ct.dcm"))
        good = self.copies(2)
        self.agent.storescu(bad, *good)
        # A lab message the clinic uploaded directly, then another under its control ID through
        # the agent (which has not seen the first): ALREADY_EXISTS at the gateway, ACK AE.
        first = lab_corpus.message("DUP-1", lab_corpus.NORMAL_PANEL)
        second = lab_corpus.message("DUP-1", lab_corpus.CRITICAL_POTASSIUM)
        paths = []
        for i, m in enumerate([first, second]):
            paths.append(os.path.join(self.workdir, f"dup{i}.hl7"))
            with open(paths[-1], "wb") as f:
                f.write(m if i == 0 else lab_corpus.mllp(m))
        self.clinic("clinic-a1").json("upload", paths[0])
        self.assertIn("MSA|AA|DUP-1", self.agent.mllp_send(paths[1])[0])
        status = harness.wait_for(
            lambda: (lambda s: s if s["pending"] == 0 and s["dead_letter"] == 2 else None)(
                self.agent.status()), 60, what="two dead letters")
        self.assertEqual(status["sent"], 2)
        dead = sorted(os.listdir(status["dead_letter_dir"]))
        self.assertEqual(len(dead), 4, dead)
        reasons = {n: read(os.path.join(status["dead_letter_dir"], n)).decode()
                   for n in dead if n.endswith(".reason.txt")}
        texts = "\n".join(reasons.values())
        self.assertIn("ALREADY_EXISTS", texts)
        self.assertIn(ds.SOPInstanceUID, texts)
        self.assertIn("MSA|AE|DUP-1", texts.replace("\r", "\n"))
        # The refused objects are kept byte for byte, and tried once only.
        ct_letter = [n for n in dead if n.endswith(".dcm")][0]
        kept = pydicom.dcmread(os.path.join(status["dead_letter_dir"], ct_letter))
        self.assertEqual(kept.SOPInstanceUID, ds.SOPInstanceUID)
        self.assertEqual(kept.StudyDescription, "changed after the first upload")
        self.assertEqual(self.agent.rows("SELECT max(attempts) FROM outbox WHERE state = 'dead'"),
                         [(1,)])

    def test_a_control_id_the_agent_has_seen_is_refused_for_other_content(self):
        """What was seen: a lab message reusing a control ID with other content got AA from the
        agent and then became a dead letter. The agent applies the gateway's identity rule with
        what it has received: other content under a used identity gets AE at once, the same
        message sent again (other line ends, no trailing CR) gets AA and is not queued twice."""
        self.agent.start()
        first = lab_corpus.message("DUP-2", lab_corpus.NORMAL_PANEL)
        other = lab_corpus.message("DUP-2", lab_corpus.CRITICAL_POTASSIUM)
        again = first.replace(b"\r", b"\n")
        answers = []
        for i, m in enumerate([first, other, again]):
            path = os.path.join(self.workdir, f"dup2-{i}.hl7")
            with open(path, "wb") as f:
                f.write(lab_corpus.mllp(m))
            answers.append(self.agent.mllp_send(path)[0])
        print(f"\n  other content under DUP-2: {answers[1][:150]}")
        self.assertIn("MSA|AA|DUP-2", answers[0])
        self.assertIn("MSA|AE|DUP-2", answers[1])
        self.assertIn("control ID already used", answers[1])
        self.assertIn("MSA|AA|DUP-2", answers[2])
        status = self.agent.wait_drained(1)
        self.assertEqual((status["sent"], status["dead_letter"]), (1, 0))
        self.assertEqual(self.agent.rows("SELECT count(*) FROM outbox"), [(1,)])

    def test_reports_come_back_into_the_inbox_verified(self):
        self.agent.start()
        self.agent.storescu(os.path.join(FILES, "CT_small.dcm"))
        self.agent.wait_drained(1)
        reader = self.reader("reader-a-rad")
        exam = reader.json("worklist")["items"][0]["exam"]["exam_id"]
        reader.run("claim", exam, check=True)
        reader.run("report", exam, "--final", "--impression", "No acute findings.", check=True)
        folder = harness.wait_for(
            lambda: glob.glob(os.path.join(self.agent.inbox_dir, exam, "*", "VERIFICATION.txt")),
            30, what="the report in the inbox")
        report_dir = os.path.dirname(folder[0])
        self.assertTrue(read(folder[0]).decode().startswith("VERIFIED: "))
        verify = run("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                     os.path.join(report_dir, "report.p7s"), "-content",
                     os.path.join(report_dir, "report.txt"), "-CAfile",
                     os.path.join(self.pki, "ca.pem"), "-purpose", "any", "-out", os.devnull)
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertFalse(os.path.exists(os.path.join(report_dir, "CRITICAL.txt")))
        printed = run("pdftotext", "-layout", os.path.join(report_dir, "report.pdf"), "-").stdout
        self.assertIn("No acute findings.", printed)
        self.assertIn("已验证", printed)
        # A restart resumes the stream after the last report: nothing is written twice; a
        # critical result says so, with its deadline.
        self.agent.stop()
        self.agent.start()
        self.agent.storescu(*self.copies(1, "MR_small.dcm"))
        self.agent.wait_drained(2)
        second = [i["exam"]["exam_id"] for i in reader.json("worklist")["items"]
                  if i["exam"]["exam_id"] != exam][0]
        reader.run("claim", second, check=True)
        reader.run("report", second, "--final", "--critical", "--impression", "Large mass.",
                   check=True)
        critical = harness.wait_for(
            lambda: glob.glob(os.path.join(self.agent.inbox_dir, second, "*", "CRITICAL.txt")),
            30, what="the critical report in the inbox")
        notice = read(critical[0]).decode()
        self.assertIn("acknowledge by", notice)
        self.assertIn(" CST\n", notice)  # China Standard Time (time_zone, default Asia/Shanghai)
        self.assertIn("impression: Large mass.", notice)
        self.assertIn("print: report.pdf", notice)
        printed = run("pdftotext", "-layout",
                      os.path.join(os.path.dirname(critical[0]), "report.pdf"), "-").stdout
        self.assertIn("危急值", printed)
        self.assertIn("CST", printed)
        self.assertEqual(len(glob.glob(os.path.join(self.agent.inbox_dir, "*", "*"))), 2)
        self.assertIn("inbox: report", self.agent.log())

    def test_sigterm_drains_and_exits_cleanly(self):
        self.agent.start()
        self.agent.storescu(*self.copies(3))
        self.agent.wait_drained(3)
        self.assertEqual(self.agent.stop(), 0)
        self.assertIn("draining", self.agent.log())

    def test_bad_config_is_refused_with_the_reason(self):
        with open(self.agent.config_path, "a") as f:
            f.write('dicom { ae_title: "A-TITLE-FAR-TOO-LONG-FOR-DICOM" }\n')
        proc = subprocess.run([os.path.join(harness.BIN_DIR, "rdg-clinic"), "agent", "--config",
                               self.agent.config_path], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 2)
        # A singular block given twice is a syntax error, named with its line and the field.
        self.assertRegex(proc.stderr, r"line \d+:\d+: .*dicom")


if __name__ == "__main__":
    unittest.main()
