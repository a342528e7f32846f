"""Requests and what the gateway answers (issue 12, "Messages" and "Fairness"): request bytes that
do not decode are INVALID_ARGUMENT naming the field, GetExam pages its objects, a clinic lists
and aborts its unfinished uploads, and the quota of open uploads holds."""
import hashlib
import importlib
import os

import grpc
import pydicom

import harness

harness.python_stubs()
common_pb2 = importlib.import_module("rdg.v1.common_pb2")
ingest_pb2 = importlib.import_module("rdg.v1.ingest_pb2")
ingest_pb2_grpc = importlib.import_module("rdg.v1.ingest_pb2_grpc")

CT_SMALL = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")


def raw_unary(channel, method):
    """A unary method that sends `bytes` as they are: what a broken or hostile client sends."""
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


def field(number, payload):
    """One length-delimited protobuf field (payload shorter than 128 bytes)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


class UndecodableRequestTest(harness.GatewayTestCase):

    def call(self, method, payload):
        with self.channel("clinic-a1") as channel:
            with self.assertRaises(grpc.RpcError) as caught:
                raw_unary(channel, method)(payload, timeout=30)
        return caught.exception

    def test_invalid_utf8_in_a_request_string_names_the_field(self):
        # What was seen: UNIMPLEMENTED with an empty message.
        e = self.call("/rdg.v1.ExamService/GetExam", field(1, b"\xd5\xc5\xc8\xfd"))  # GB18030
        print(f"\n  GetExam exam_id in GB18030: {e.code().name}: {e.details()}")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rdg.v1.GetExamRequest.exam_id is not valid UTF-8", e.details())
        # A nested field: OpenUploadRequest.client_ref.
        e = self.call("/rdg.v1.IngestService/OpenUpload", field(5, b"\xff\xfe ref"))
        print(f"  OpenUpload client_ref: {e.code().name}: {e.details()}")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rdg.v1.OpenUploadRequest.client_ref", e.details())
        # In a client stream: the `open` of an Upload.
        with self.channel("clinic-a1") as channel:
            upload = channel.stream_unary("/rdg.v1.IngestService/Upload", request_serializer=None,
                                          response_deserializer=None)
            with self.assertRaises(grpc.RpcError) as caught:
                upload(iter([field(1, field(5, b"\xc0\xc1"))]), timeout=30)
        e = caught.exception
        print(f"  Upload open.client_ref: {e.code().name}: {e.details()}")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rdg.v1.OpenUploadRequest.client_ref is not valid UTF-8", e.details())
        self.assert_gateway_alive()

    def test_unparsable_request_bytes_are_invalid_argument(self):
        # What was seen: unparsable request bytes were answered UNIMPLEMENTED with an empty message.
        e = self.call("/rdg.v1.ExamService/ListExams", b"\xff\xff\xff\xff")
        print(f"\n  ListExams with garbage: {e.code().name}: {e.details()}")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("not a valid rdg.v1.ListExamsRequest", e.details())
        # A method that does not exist is still UNIMPLEMENTED.
        e = self.call("/rdg.v1.ExamService/NoSuchMethod", b"")
        self.assertEqual(e.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assert_gateway_alive()


class ExamPagingTest(harness.GatewayTestCase):

    def test_get_exam_pages_its_objects(self):
        # What was seen: GetExam of a 25,000-instance study exceeds gRPC's 4 MB default.
        folder = os.path.join(self.workdir, "study")
        os.makedirs(folder)
        for i in range(7):
            ds = pydicom.dcmread(CT_SMALL)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID}.{700 + i}"
            ds.InstanceNumber = 7 - i
            harness.write_dicom(ds, os.path.join(folder, f"ct{i}.dcm"))
        clinic = self.clinic("clinic-a1")
        exam_id = clinic.json("upload", folder)["exams"][0]["exam_id"]
        ingest = importlib.import_module("rdg.v1.ingest_pb2_grpc")
        with self.channel("clinic-a1") as channel:
            stub = ingest.ExamServiceStub(channel)
            seen, token, pages = [], "", 0
            while True:
                page = stub.GetExam(ingest_pb2.GetExamRequest(exam_id=exam_id, page_size=3,
                                                              page_token=token), timeout=30)
                pages += 1
                self.assertEqual(len(page.events) > 0, token == "", "events come with page 1 only")
                seen += [o.instance_number for o in page.objects]
                token = page.next_page_token
                if not token:
                    break
            self.assertEqual(pages, 3)
            self.assertEqual(sorted(seen), list(range(1, 8)))
            with self.assertRaises(grpc.RpcError) as caught:
                stub.GetExam(ingest_pb2.GetExamRequest(exam_id=exam_id, page_token="bogus"),
                             timeout=30)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        shown = clinic.json("exam", exam_id)
        self.assertEqual(len(shown["objects"]), 7)
        self.assertEqual(shown["exam"]["exam_id"], exam_id)
        proc = clinic.run("exam", exam_id, check=True)
        print("\n" + proc.stdout)
        self.assertIn("ROUTED", proc.stdout)
        # Another clinic's exam: refused, exit 1.
        self.assertEqual(self.clinic("clinic-b1").run("exam", exam_id).returncode, 1)


class UploadSessionsTest(harness.GatewayTestCase):

    extra_config = "limits { max_open_uploads: 3 }\n"

    def open(self, stub, seed, size=1000):
        return stub.OpenUpload(ingest_pb2.OpenUploadRequest(
            kind=common_pb2.DICOM, size=size, sha256=hashlib.sha256(seed).digest(),
            client_ref=f"ref-{seed.decode()}"), timeout=30)

    def test_clinic_lists_and_aborts_its_uploads(self):
        # What was seen: a clinic has no call to list or clear its sessions, and refused attempts
        # count toward its quota.
        with self.channel("clinic-a1") as a, self.channel("clinic-b1") as b:
            stub_a, stub_b = ingest_pb2_grpc.IngestServiceStub(a), ingest_pb2_grpc.IngestServiceStub(b)
            opened = [self.open(stub_a, b"a%d" % i).session_id for i in range(3)]
            other = self.open(stub_b, b"b0").session_id
            # The quota of open uploads (3): the fourth is UNAVAILABLE (it passes), with the way out.
            with self.assertRaises(grpc.RpcError) as caught:
                self.open(stub_a, b"a3")
            e = caught.exception
            print(f"\n  fourth open upload: {e.code().name}: {e.details()}")
            self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("rdg-clinic uploads", e.details())
            # Sending a few bytes to one of them leaves a part file.
            stub_a.Upload(iter([ingest_pb2.UploadRequest(session_id=opened[0], offset=0,
                                                         data=b"x" * 10)]), timeout=30)

        clinic = self.clinic("clinic-a1")
        listed = clinic.json("uploads")["uploads"]
        self.assertEqual([u["status"]["session_id"] for u in listed], opened)
        self.assertEqual(listed[0]["status"]["committed_offset"], "10")
        self.assertEqual(listed[1]["client_ref"], "ref-a1")
        proc = clinic.run("uploads", check=True)
        print(proc.stdout)
        self.assertIn("3 unfinished uploads", proc.stdout)
        # Another institution's session is neither listed nor abortable.
        self.assertNotIn(other, proc.stdout)
        self.assertEqual(clinic.run("uploads", "--abort", other).returncode, 1)
        # Abort one, then all: sessions and part files go at once.
        self.assertEqual(len(self.gateway.upload_files()), 1)
        clinic.run("uploads", "--abort", opened[0], check=True)
        self.assertEqual(self.gateway.upload_files(), [])
        aborted = clinic.json("uploads", "--abort", "all")
        self.assertEqual(sorted(a["session_id"] for a in aborted), sorted(opened[1:]))
        self.assertEqual(clinic.json("uploads").get("uploads", []), [])
        self.assertEqual(self.gateway.query(
            "SELECT session_id FROM upload_sessions"), [(other,)])
        # The quota is free again.
        with self.channel("clinic-a1") as a:
            self.open(ingest_pb2_grpc.IngestServiceStub(a), b"a4")
        self.assert_gateway_alive()


class RequestLimitsTest(harness.GatewayTestCase):

    def test_oversized_request_fields_are_refused_naming_the_field(self):
        # What was seen: request ids of 4 MB echoed into error messages (the client could not read
        # the error) with the gateway's RSS going 30 -> 329 MB and staying; a 4 MB escalation
        # reason stored and returned by every later GetExam; a 4 MB audit filter written into the
        # append-only log. (1 MB here: gRPC itself refuses requests over limits.max_chunk_bytes
        # + 1 MiB.)
        reading_pb2 = importlib.import_module("rdg.v1.reading_pb2")
        reading_pb2_grpc = importlib.import_module("rdg.v1.reading_pb2_grpc")
        admin_pb2 = importlib.import_module("rdg.v1.admin_pb2")
        admin_pb2_grpc = importlib.import_module("rdg.v1.admin_pb2_grpc")
        big = "E" * (1 << 20)
        rss_before = harness.proc_status_kb(self.gateway.proc.pid, "VmRSS") * 1024
        calls = [
            ("clinic-a1", lambda ch: ingest_pb2_grpc.ExamServiceStub(ch).GetExam(
                ingest_pb2.GetExamRequest(exam_id=big), timeout=30), "exam_id"),
            ("reader-a-rad", lambda ch: reading_pb2_grpc.ReadingServiceStub(ch).EscalateExam(
                reading_pb2.EscalateRequest(exam_id="ex-1", reason=big), timeout=30), "reason"),
            ("admin", lambda ch: admin_pb2_grpc.AdminServiceStub(ch).QueryAudit(
                admin_pb2.AuditRequest(user=big), timeout=30), "user"),
        ]
        print()
        for round in range(10):
            for who, call, field in calls:
                with self.channel(who) as channel:
                    with self.assertRaises(grpc.RpcError) as caught:
                        call(channel)
                e = caught.exception
                if round == 0:
                    print(f"  {who}, {field} of 1 MB: {e.code().name}: {e.details()}")
                self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT, e.details())
                self.assertIn(field, e.details())
                self.assertLess(len(e.details()), 1024, "the value must not be echoed")
        self.assertEqual(self.gateway.query(
            "SELECT COUNT(*) FROM audit_log WHERE length(detail) > 4096 OR length(user) > 4096 "
            "OR length(exam_id) > 4096"), [(0,)])
        grown = harness.proc_status_kb(self.gateway.proc.pid, "VmRSS") * 1024 - rss_before
        print(f"  gateway resident memory after 30 such requests: {grown / 2**20:+.1f} MiB")
        if not os.environ.get("RDG_SANITIZE"):
            self.assertLess(grown, 32 << 20)
        self.assert_gateway_alive()

