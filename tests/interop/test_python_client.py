"""An independent client: Python stubs generated from proto/ with Debian's protoc and gRPC Python
plugin upload and list over mTLS, and check health checking, reflection and UNIMPLEMENTED RPCs."""
import hashlib
import importlib
import os
import unittest

import grpc

import harness


STUBS = harness.python_stubs()
ingest_pb2 = importlib.import_module("rdg.v1.ingest_pb2")
ingest_pb2_grpc = importlib.import_module("rdg.v1.ingest_pb2_grpc")
common_pb2 = importlib.import_module("rdg.v1.common_pb2")
reading_pb2 = importlib.import_module("rdg.v1.reading_pb2")
reading_pb2_grpc = importlib.import_module("rdg.v1.reading_pb2_grpc")
admin_pb2 = importlib.import_module("rdg.v1.admin_pb2")
admin_pb2_grpc = importlib.import_module("rdg.v1.admin_pb2_grpc")


class PythonClientTest(harness.GatewayTestCase):

    def test_upload_and_list(self):
        with open(os.path.join(harness.PYDICOM_FILES, "CT_small.dcm"), "rb") as f:
            data = f.read()
        stub = ingest_pb2_grpc.IngestServiceStub(self.channel("clinic-a1"))
        # A large-object style upload: open a persisted session, then stream two chunks.
        opened = stub.OpenUpload(ingest_pb2.OpenUploadRequest(
            kind=common_pb2.DICOM, size=len(data), sha256=hashlib.sha256(data).digest(),
            priority=common_pb2.URGENT), timeout=30)
        self.assertEqual(opened.state, ingest_pb2.OPEN)
        self.assertEqual(opened.committed_offset, 0)
        half = len(data) // 2

        def chunks():
            yield ingest_pb2.UploadRequest(session_id=opened.session_id, offset=0, data=data[:half])
            yield ingest_pb2.UploadRequest(offset=half, data=data[half:], commit=True)
        status = stub.Upload(chunks(), timeout=30)
        self.assertEqual(status.state, ingest_pb2.COMMITTED)
        self.assertFalse(status.committed.duplicate)
        exam_id = status.committed.exam_id

        exams = ingest_pb2_grpc.ExamServiceStub(self.channel("clinic-a1"))
        listed = exams.ListExams(ingest_pb2.ListExamsRequest(), timeout=30)
        self.assertEqual([e.exam_id for e in listed.exams], [exam_id])
        exam = listed.exams[0]
        self.assertEqual(exam.exam_type, "CT")
        self.assertEqual(exam.priority, common_pb2.URGENT)
        self.assertEqual(exam.patient.patient_id, "1CT1")
        got = b"".join(c.data for c in exams.DownloadExam(
            ingest_pb2.DownloadExamRequest(exam_id=exam_id), timeout=30))
        self.assertEqual(got, data)

        # One-message upload of the same bytes: answered as a duplicate.
        again = stub.Upload(iter([ingest_pb2.UploadRequest(
            open=ingest_pb2.OpenUploadRequest(kind=common_pb2.DICOM, size=len(data),
                                              sha256=hashlib.sha256(data).digest()),
            offset=0, data=data, commit=True)]), timeout=30)
        self.assertTrue(again.committed.duplicate)
        self.assertEqual(again.committed.exam_id, exam_id)

    def test_roles_and_unimplemented(self):
        reader = ingest_pb2_grpc.ExamServiceStub(self.channel("reader-a-rad"))
        with self.assertRaises(grpc.RpcError) as err:
            reader.ListExams(ingest_pb2.ListExamsRequest(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        reading = reading_pb2_grpc.ReadingServiceStub(self.channel("reader-a-rad"))
        self.assertEqual(len(reading.GetWorklist(reading_pb2.WorklistRequest(), timeout=30).items), 0)
        with self.assertRaises(grpc.RpcError) as err:
            reading.GetPriors(reading_pb2.PriorsRequest(exam_id="ex-0"), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
        admin = admin_pb2_grpc.AdminServiceStub(self.channel("admin"))
        names = [q.queue for q in admin.GetQueues(admin_pb2.QueuesRequest(), timeout=30).queues]
        self.assertIn("county-a/imaging", names)  # configured queues are listed while empty
        clinic = reading_pb2_grpc.ReadingServiceStub(self.channel("clinic-a1"))
        with self.assertRaises(grpc.RpcError) as err:
            clinic.GetWorklist(reading_pb2.WorklistRequest(), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_health_and_reflection(self):
        channel = self.channel("clinic-a1")
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda x: x,
                                    response_deserializer=lambda x: x)
        self.assertEqual(check(b"", timeout=30), b"\x08\x01")  # status: SERVING
        reflect = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda x: x, response_deserializer=lambda x: x)
        replies = list(reflect(iter([b"\x3a\x00"]), timeout=30))  # list_services: ""
        self.assertIn(b"rdg.v1.IngestService", replies[0])
        self.assertIn(b"rdg.v1.AdminService", replies[0])


if __name__ == "__main__":
    unittest.main()
