"""Reactors cannot outlive their call (issue 12): thousands of report watches, uploads, downloads
and a reader's fetches cancelled at random moments while the worker pool is saturated leave the
gateway up and every stream reactor freed (rdg_grpc_streams_active back to zero in /metrics)."""
import hashlib
import importlib
import random
import re
import threading
import time
import urllib.request

import grpc

import harness

harness.python_stubs()
common_pb2 = importlib.import_module("rdg.v1.common_pb2")
delivery_pb2 = importlib.import_module("rdg.v1.delivery_pb2")
delivery_pb2_grpc = importlib.import_module("rdg.v1.delivery_pb2_grpc")
ingest_pb2 = importlib.import_module("rdg.v1.ingest_pb2")
ingest_pb2_grpc = importlib.import_module("rdg.v1.ingest_pb2_grpc")
reading_pb2 = importlib.import_module("rdg.v1.reading_pb2")
reading_pb2_grpc = importlib.import_module("rdg.v1.reading_pb2_grpc")

WATCHES = 3000
UPLOADS = 600
DOWNLOADS = 600
FETCHES = 600


class ReactorStressTest(harness.GatewayTestCase):

    # Two pool threads: the watch reactors' first tasks queue behind the saturating calls.
    extra_config = "worker_threads: 2\n"

    def active_streams(self):
        request = urllib.request.Request(
            f"{self.gateway.monitoring_url}/metrics",
            headers={"Authorization": f"Bearer {self.gateway.monitoring_token}"})
        text = urllib.request.urlopen(request, timeout=10).read().decode()
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r'^rdg_grpc_streams_active\{kind="(\w+)"\} (-?\d+)$', text, re.M)}

    def test_cancel_storm_while_the_pool_is_saturated(self):
        # What was seen: a report watch cancelled while the worker pool was busy ran
        # WatchReactor::Start after gRPC had freed the call (heap-use-after-free, SIGABRT), and
        # OnDone racing a finishing pool task could delete a reactor twice. Under ASan (CI) any
        # recurrence is a crash of the gateway, which fails this test.
        ct = harness.read_bytes(f"{harness.PYDICOM_FILES}/CT_small.dcm")
        stored = self.clinic("clinic-a1").json("upload", f"{harness.PYDICOM_FILES}/CT_small.dcm",
                                               timeout=60)
        exam_id = stored["exams"][0]["exam_id"] if stored.get("exams") else \
            stored["files"][0]["exam_id"]
        channel = self.channel("clinic-a1")
        delivery = delivery_pb2_grpc.DeliveryServiceStub(channel)
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        exams = ingest_pb2_grpc.ExamServiceStub(channel)
        # The county radiologist claims the exam and fetches it (ReadingService.FetchExam).
        reader_channel = self.channel("reader-a-rad")
        reading = reading_pb2_grpc.ReadingServiceStub(reader_channel)
        reading.ClaimExam(reading_pb2.ClaimRequest(exam_id=exam_id), timeout=30)
        stop = threading.Event()

        def saturate():  # keeps both pool threads busy with real index work
            while not stop.is_set():
                try:
                    exams.ListExams(ingest_pb2.ListExamsRequest(), timeout=10)
                    delivery.PollReports(delivery_pb2.WatchReportsRequest(), timeout=10)
                except grpc.RpcError:
                    pass

        def upload_messages(sha):
            yield ingest_pb2.UploadRequest(
                open=ingest_pb2.OpenUploadRequest(kind=common_pb2.DICOM, size=len(ct) + 1,
                                                  sha256=sha),
                offset=0, data=ct[:1000])
            yield ingest_pb2.UploadRequest(offset=1000, data=ct[1000:5000])

        def storm(kind, count, seed):
            rng = random.Random(seed)
            for i in range(count):
                if kind == "watch":
                    call = delivery.WatchReports(delivery_pb2.WatchReportsRequest())
                elif kind == "upload":
                    sha = hashlib.sha256(b"%d-%d" % (seed, i)).digest()
                    call = ingest.Upload.future(upload_messages(sha))
                elif kind == "download":
                    call = exams.DownloadExam(ingest_pb2.DownloadExamRequest(exam_id=exam_id))
                else:
                    call = reading.FetchExam(reading_pb2.FetchExamRequest(exam_id=exam_id))
                # Cancel at once, after the first chunk arrived (downloads and fetches), or a
                # moment later (a watch with nothing to deliver sends nothing, so it is never read).
                moment = rng.random()
                if moment < 0.3 and kind in ("download", "fetch"):
                    try:
                        next(call)
                    except (grpc.RpcError, StopIteration):
                        pass
                elif moment < 0.7:
                    # A random moment to cancel at (not a wait for anything): 0-20 ms in.
                    time.sleep(rng.random() * 0.02)
                call.cancel()

        def thread(target, *args):  # daemons: a hung client thread cannot hold the test process
            return threading.Thread(target=target, args=args, daemon=True)
        workers = [thread(saturate) for _ in range(4)]
        storms = [thread(storm, "watch", WATCHES // 4, s) for s in range(4)]
        storms += [thread(storm, "upload", UPLOADS // 2, 10 + s) for s in range(2)]
        storms += [thread(storm, "download", DOWNLOADS // 2, 20 + s) for s in range(2)]
        storms += [thread(storm, "fetch", FETCHES // 2, 30 + s) for s in range(2)]
        peak = {}

        def sample():  # the most stream reactors alive at once: proof the storm reached them
            while not stop.is_set():
                for kind, n in self.active_streams().items():
                    peak[kind] = max(peak.get(kind, 0), n)
        sampler = thread(sample)
        for t in workers + storms + [sampler]:
            t.start()
        for t in storms:
            t.join(timeout=300)
            self.assertFalse(t.is_alive(), "a storm thread hung")
        stop.set()
        for t in workers + [sampler]:
            t.join(timeout=60)
        channel.close()
        reader_channel.close()
        self.assert_gateway_alive()

        # Every reactor is freed once its call is over; none twice (the count never goes below 0).
        def all_freed():
            self.assert_gateway_alive()
            counts = self.active_streams()
            self.assertTrue(all(v >= 0 for v in counts.values()), counts)
            return counts if counts and not any(counts.values()) else None
        counts = harness.wait_for(all_freed, timeout=120, interval=0.2, what="stream reactors freed")
        print(f"\n  {WATCHES} watches, {UPLOADS} uploads, {DOWNLOADS} downloads, {FETCHES} "
              f"fetches cancelled; most "
              f"alive at once {peak}; alive after {counts}")
        self.assertGreater(peak.get("watch", 0), 0, "the watches never reached the gateway")
        self.assertGreater(peak.get("upload", 0), 0, "the uploads never reached the gateway")
        self.assertGreater(peak.get("objects", 0), 0, "downloads/fetches never reached the gateway")
        # ... and the gateway still serves a watch end to end.
        with self.channel("clinic-a1") as fresh:
            listed = ingest_pb2_grpc.ExamServiceStub(fresh).ListExams(ingest_pb2.ListExamsRequest(),
                                                                       timeout=30)
            self.assertEqual(len(listed.exams), 1)
        # ... and the reader still holds the claim and fetches the whole exam.
        with self.channel("reader-a-rad") as fresh:
            chunks = list(reading_pb2_grpc.ReadingServiceStub(fresh).FetchExam(
                reading_pb2.FetchExamRequest(exam_id=exam_id), timeout=60))
            self.assertEqual(b"".join(c.data for c in chunks), ct)

