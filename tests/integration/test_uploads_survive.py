"""Uploads that survive trouble (issue 12): a connection that dies silently frees its upload within
a minute (server keepalive); a busy index while committing keeps the staged bytes and the session,
so the clinic resumes without sending anything again; a stream that runs past
limits.max_upload_stream_seconds is ended and its bytes stay resumable."""
import hashlib
import importlib
import os
import sqlite3
import threading
import time

import grpc

import harness

harness.python_stubs()
common_pb2 = importlib.import_module("rdg.v1.common_pb2")
ingest_pb2 = importlib.import_module("rdg.v1.ingest_pb2")
ingest_pb2_grpc = importlib.import_module("rdg.v1.ingest_pb2_grpc")

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


class UploadSurvivalTestCase(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.data = harness.read_bytes(CT_SMALL)
        self.stub = ingest_pb2_grpc.IngestServiceStub(self.channel("clinic-a1"))

    def open_upload(self):
        return self.stub.OpenUpload(ingest_pb2.OpenUploadRequest(
            kind=common_pb2.DICOM, size=len(self.data),
            sha256=hashlib.sha256(self.data).digest()), timeout=30)

    def status(self, session_id):
        return self.stub.GetUpload(ingest_pb2.GetUploadRequest(session_id=session_id), timeout=30)

    def wait_released(self, session_id, timeout):
        """The session's status once no connection holds it any more."""
        return harness.wait_for(
            lambda: (lambda st: st if not st.in_use else None)(self.status(session_id)),
            timeout=timeout, interval=0.2, what=f"upload {session_id} released")

    def resume_and_commit(self, session_id):
        """What rdg-clinic does on its next attempt: ask where the session stands and send the rest."""
        st = self.status(session_id)
        offset = st.committed_offset
        return self.stub.Upload(iter([ingest_pb2.UploadRequest(
            session_id=session_id, offset=offset, data=self.data[offset:], commit=True)]),
            timeout=60)

    def assert_stored_once(self):
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(1,)])
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM upload_sessions"), [(0,)])
        self.assertEqual(self.gateway.upload_files(), [])
        self.assertEqual(len(self.gateway.blob_files()), 1)
        self.assert_gateway_alive()


class SilentConnectionTest(UploadSurvivalTestCase):

    def test_a_silently_dropped_connection_frees_its_upload_within_a_minute(self):
        # What was seen: a connection dropped without FIN or RST (a van out of coverage) left its
        # upload session "in use" for up to 2 hours, and resuming was refused with ABORTED.
        proxy = harness.FlakyProxy(self.gateway.port)
        self.addCleanup(proxy.close)
        opened = self.open_upload()
        far = grpc.secure_channel(proxy.address, self.credentials("clinic-a1"))
        self.addCleanup(far.close)
        sent = threading.Event()

        def messages():
            yield ingest_pb2.UploadRequest(session_id=opened.session_id, offset=0,
                                           data=self.data[:10000])
            sent.set()
            threading.Event().wait(300)  # the van never says another word

        call = ingest_pb2_grpc.IngestServiceStub(far).Upload.future(messages(), timeout=300)
        self.addCleanup(call.cancel)
        self.assertTrue(sent.wait(30))
        harness.wait_for(lambda: self.status(opened.session_id).in_use, timeout=30,
                         what="the upload held by the far connection")
        proxy.blackhole()
        went_silent = time.monotonic()
        st = self.wait_released(opened.session_id, timeout=90)
        freed_after = time.monotonic() - went_silent
        print(f"\n  silent connection's upload freed after {freed_after:.1f} s with "
              f"{st.committed_offset} of {st.size} bytes kept")
        self.assertLess(freed_after, 60)  # keepalive: a ping every 20 s, 10 s for its answer
        self.assertEqual(st.committed_offset, 10000)
        # The resume from a new connection goes through at its first attempt.
        self.assertEqual(self.resume_and_commit(opened.session_id).state, ingest_pb2.COMMITTED)
        self.assert_stored_once()


@harness.sqlite_only("SQLite's write lock")
class BusyIndexWhileCommittingTest(UploadSurvivalTestCase):

    # No housekeeping writes queueing behind the lock too: each would wait out busy_timeout.
    extra_config = "housekeeping_seconds: 3600\n"

    def test_sqlite_busy_while_committing_keeps_the_upload_for_resume(self):
        # What was seen: a transient failure while committing (SQLite busy) threw away the staged
        # bytes, so a van on a slow link started over.
        opened = self.open_upload()
        # Another writer holds the index's write lock longer than the gateway waits for it.
        db = sqlite3.connect(os.path.join(self.gateway.data_dir, "index.sqlite"), timeout=0,
                             isolation_level=None)
        self.addCleanup(db.close)
        db.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Upload(iter([ingest_pb2.UploadRequest(
                session_id=opened.session_id, offset=0, data=self.data, commit=True)]), timeout=120)
        waited = time.monotonic() - began
        db.execute("ROLLBACK")
        e = caught.exception
        print(f"\n  index busy for {waited:.1f} s: {e.code().name}: {e.details()}")
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("the upload is kept", e.details())
        # Nothing was stored, and nothing of the upload was lost.
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(0,)])
        self.assertEqual(self.gateway.blob_files(), [])
        st = self.wait_released(opened.session_id, timeout=30)
        self.assertEqual(st.committed_offset, len(self.data))
        self.assertEqual(st.state, ingest_pb2.OPEN)
        # Once the lock is gone the resume commits without a byte sent again.
        resumed = self.stub.Upload(iter([ingest_pb2.UploadRequest(
            session_id=opened.session_id, offset=len(self.data), commit=True)]), timeout=60)
        self.assertEqual(resumed.state, ingest_pb2.COMMITTED)
        self.assert_stored_once()


class LongestStreamTest(UploadSurvivalTestCase):

    extra_config = "housekeeping_seconds: 1\nlimits { max_upload_stream_seconds: 2 }\n"

    def test_a_stream_past_max_upload_stream_seconds_is_ended_and_resumes(self):
        # A stream that keeps sending (so it is never idle) but runs longer than the limit.
        opened = self.open_upload()
        chunk = 500

        def trickle():
            for offset in range(0, len(self.data), chunk):
                yield ingest_pb2.UploadRequest(session_id=opened.session_id if offset == 0 else "",
                                               offset=offset, data=self.data[offset:offset + chunk])
                time.sleep(0.3)  # the client's pace (a slow link), not a wait for anything

        began = time.monotonic()
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Upload(trickle(), timeout=120)
        lasted = time.monotonic() - began
        e = caught.exception
        print(f"\n  stream ended after {lasted:.1f} s: {e.code().name}: {e.details()}")
        self.assertEqual(e.code(), grpc.StatusCode.CANCELLED)
        self.assertLess(lasted, 20)  # the whole trickle would take ~24 s
        st = self.wait_released(opened.session_id, timeout=30)
        self.assertGreater(st.committed_offset, 0)
        self.assertLess(st.committed_offset, len(self.data))
        self.assertEqual(self.resume_and_commit(opened.session_id).state, ingest_pb2.COMMITTED)
        self.assert_stored_once()
