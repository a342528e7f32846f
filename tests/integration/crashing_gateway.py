"""A stand-in for a gateway with a fatal bug, for the edge agent's quarantine test: it serves
IngestService over mTLS with the dev PKI's gateway certificate and keeps what it is sent in a
folder, but the process dies (os._exit) when it is asked to commit an object that contains
MARKER — until the file FIXED exists in the folder, as after a gateway upgrade. Each commit is
answered with the trailer a real gateway sends (rdg-answered-by-gateway).

    python3 crashing_gateway.py PKI_DIR PORT STORE_DIR

Prints "ready PORT" once listening. Small objects only (one message with `open` and `commit`),
which is what the agent sends for objects under its chunk size."""
import hashlib
import importlib
import os
import sys
from concurrent import futures

import grpc

import harness

MARKER = b"CRASH-THE-GATEWAY"
ANSWERED = (("rdg-answered-by-gateway", "1"),)

harness.python_stubs()
ingest_pb2 = importlib.import_module("rdg.v1.ingest_pb2")
ingest_pb2_grpc = importlib.import_module("rdg.v1.ingest_pb2_grpc")


class CrashingIngest(ingest_pb2_grpc.IngestServiceServicer):

    def __init__(self, store):
        self.store = store

    def Upload(self, request_iterator, context):
        data, opened = b"", None
        for message in request_iterator:
            if message.HasField("open"):
                opened = message.open
            data += message.data
            if message.commit:
                break
        if opened is None or len(data) != opened.size or \
                hashlib.sha256(data).digest() != opened.sha256:
            context.set_trailing_metadata(ANSWERED)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "stand-in: incomplete upload")
        if MARKER in data and not os.path.exists(os.path.join(self.store, "FIXED")):
            os._exit(70)  # the fatal bug: no answer, the connection just drops
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.store, digest + ".dcm"), "wb") as f:
            f.write(data)
        context.set_trailing_metadata(ANSWERED)
        return ingest_pb2.UploadStatus(
            session_id="stand-in", state=ingest_pb2.COMMITTED, committed_offset=len(data),
            size=len(data), committed=ingest_pb2.CommittedObject(exam_id="ex-" + digest[:8]))


def main():
    pki, port, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(CrashingIngest(store), server)

    def read(name):
        with open(os.path.join(pki, name), "rb") as f:
            return f.read()
    credentials = grpc.ssl_server_credentials(
        [(read("gateway.key"), read("gateway.pem"))], root_certificates=read("ca.pem"),
        require_client_auth=True)
    bound = server.add_secure_port(f"127.0.0.1:{port}", credentials)
    server.start()
    print(f"ready {bound}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
