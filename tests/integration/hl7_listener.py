"""A stand-in hospital information system for integration tests: python3-hl7's MLLP server
(`hl7.mllp`, HL7 v2 over TCP, each message framed as <VT> message <FS><CR>) on 127.0.0.1, run
on an asyncio loop in a background thread.

It records every message it receives and answers each with an ACK (MSA-1 = `ack_code`), or
never answers when `silent`. With `tls` (certificate, key, CA) it takes MLLP over TLS only, and
requires the client's certificate to chain to that CA (`peer_subjects` records whose it was).
stop() closes the listening socket and every open connection (the HIS is down for its clients);
start() again listens on the same port.

Run as a script for a self-check.
"""
import asyncio
import itertools
import ssl
import threading
import time

import hl7.mllp

from harness import wait_for

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def ack_for(message, ack_code="AA", control_id="ACK1"):
    """The HL7 ACK of `message` (str): MSH with the received separators, sender and receiver
    swapped, MSH-9 ACK^R01^ACK, the received version, MSH-18 UNICODE UTF-8; MSA-1 `ack_code`,
    MSA-2 the received MSH-10."""
    msh = next((s for s in message.replace("\n", "\r").split("\r") if s.startswith("MSH")), "")
    sep = msh[3] if len(msh) > 3 else "|"
    fields = msh.split(sep) if msh else ["MSH", "^~\\&"]
    fields += [""] * (12 - len(fields))  # fields[n - 1] is MSH-n (n >= 2)
    encoding = fields[1] or "^~\\&"
    comp = encoding[0]
    header = ["MSH", encoding, fields[4], fields[5], fields[2], fields[3],
              time.strftime("%Y%m%d%H%M%S"), "", f"ACK{comp}R01{comp}ACK", control_id,
              fields[10] or "P", fields[11], "", "", "", "", "", "UNICODE UTF-8"]
    return sep.join(header) + "\r" + sep.join(["MSA", ack_code, fields[9]]) + "\r"


class Hl7Listener:
    """An MLLP server on 127.0.0.1: `messages` (every message received, in order; appended under
    a lock), `ack_code` (MSA-1 of the ACKs), `silent` (read but never answer), `port` (chosen by
    the OS on the first start, kept on restarts), `connections` (accepted so far)."""

    def __init__(self, ack_code="AA", silent=False, tls=None):
        self.ack_code = ack_code
        self.silent = silent
        self.tls = tls  # (certificate, key, CA of the clients' certificates), PEM paths
        self.peer_subjects = []  # over TLS: each client certificate's subject, as a dict
        self.port = None
        self.messages = []
        self.connections = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop = None
        self._thread = None
        self._server = None
        self._stopping = False  # read and written on the loop's thread only
        self._writers = set()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        """Listens (again) on 127.0.0.1:`port` (a free port on the first start)."""
        if self._server:
            raise RuntimeError("the HL7 listener is already running")
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()
        context = None
        if self.tls:
            certificate, key, ca = self.tls
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(certificate, key)
            context.load_verify_locations(ca)
            context.verify_mode = ssl.CERT_REQUIRED

        async def listen():
            self._stopping = False
            return await hl7.mllp.start_hl7_server(
                self._serve, "127.0.0.1", self.port or 0, limit=1 << 20, encoding="utf-8",
                ssl=context, reuse_address=True)
        self._server = self._run(listen())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self, timeout=10.0):
        """Closes the listening socket and every open connection."""
        if self._server is None:
            return

        async def close(server):
            # A connection whose handler has not run yet closes itself when it does (_serve).
            self._stopping = True
            server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.wait_for(server.wait_closed(), timeout)
        server, self._server = self._server, None
        self._run(close(server), timeout + 1)

    def wait_messages(self, n, timeout=30.0):
        """Polls until at least `n` messages arrived; returns a copy of `messages`."""
        wait_for(lambda: len(self.messages) >= n, timeout, what=f"{n} HL7 messages")
        with self._lock:
            return list(self.messages)

    def _run(self, coroutine, timeout=30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _serve(self, reader, writer):
        """One connection: frames until the peer closes or stop(), several per connection."""
        if self._stopping:  # accepted just before stop(): the HIS is down
            writer.close()
            return
        self._writers.add(writer)
        with self._lock:
            self.connections += 1
            peer = writer.get_extra_info("peercert")
            if peer:
                self.peer_subjects.append(dict(x[0] for x in peer["subject"]))
        try:
            while True:
                block = await reader.readblock()  # python3-hl7's MLLP framing
                message = block.decode("utf-8", errors="replace")
                with self._lock:
                    self.messages.append(message)
                if not self.silent:
                    ack = ack_for(message, self.ack_code, f"ACK{next(self._ids)}")
                    writer.writeblock(ack.encode("utf-8"))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError,
                hl7.mllp.InvalidBlockError):
            pass  # the peer closed or broke the connection, or stop() did
        finally:
            self._writers.discard(writer)
            writer.close()


def _self_check():
    import socket
    oru = ("MSH|^~\\&|RDG|COUNTY_HOSPITAL|HIS|COUNTY|20240101120000||ORU^R01^ORU_R01|MSG{n}|P|2.5"
           "|||||CHN|UNICODE UTF-8\rPID|1||P123^^^HOSP^MR||张三^^^^^^L||19800101|M\r"
           "OBR|1||A1|71020^Chest X-ray^C4\rOBX|1|TX|71020^Chest X-ray^C4||正常 normal||||||F\r")

    def exchange(sock, n, split=False):
        frame = VT + oru.format(n=n).encode("utf-8") + FS + CR
        if split:  # partial writes, one byte at a time through the multi-byte name
            for i in range(len(frame)):
                sock.sendall(frame[i:i + 1])
        else:
            sock.sendall(frame)
        reply = b""
        while not reply.endswith(FS + CR):
            chunk = sock.recv(4096)
            assert chunk, "the listener closed the connection"
            reply += chunk
        ack = hl7.parse(reply[1:-2].decode("utf-8"))
        assert str(ack.segment("MSA")[1]) == "AA" and str(ack.segment("MSA")[2]) == f"MSG{n}", ack
        msh = ack.segment("MSH")
        assert (str(msh[3]), str(msh[4]), str(msh[5]), str(msh[6])) == \
            ("HIS", "COUNTY", "RDG", "COUNTY_HOSPITAL"), str(msh)
        assert (str(msh[9]), str(msh[12]), str(msh[18])) == \
            ("ACK^R01^ACK", "2.5", "UNICODE UTF-8"), str(msh)

    listener = Hl7Listener().start()
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            exchange(sock, 1)
            exchange(sock, 2, split=True)
            assert listener.wait_messages(2, 10) == [oru.format(n=1), oru.format(n=2)]
            assert "张三" in listener.messages[0]
            port = listener.port
            listener.stop()
            sock.settimeout(10)
            assert sock.recv(10) == b"", "stop() left a connection open"
        listener.start()
        assert listener.port == port
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            exchange(sock, 3)
        assert listener.wait_messages(3, 10)[2] == oru.format(n=3)
        listener.stop()
        listener.silent = True
        listener.start()
        with socket.create_connection(("127.0.0.1", listener.port), timeout=0.5) as sock:
            sock.sendall(VT + oru.format(n=4).encode("utf-8") + FS + CR)
            listener.wait_messages(4, 10)
            try:  # neither an answer nor a close within the client's timeout
                raise AssertionError(f"a silent listener answered {sock.recv(10)!r}")
            except socket.timeout:
                pass
    finally:
        listener.stop()
    print("OK")


if __name__ == "__main__":
    _self_check()
