"""A stand-in hospital information system for integration tests: an MLLP server (HL7 v2 over TCP,
each message framed as <VT> message <FS><CR>) on 127.0.0.1, in background threads.

It records every message it receives and answers each with an ACK (MSA-1 = `ack_code`), or
never answers when `silent`. With `tls` (certificate, key, CA) it takes MLLP over TLS only, and
requires the client's certificate to chain to that CA (`peer_subjects` records whose it was). stop() closes the listening socket and every open connection (the
HIS is down for its clients); start() again listens on the same port.

Run as a script for a self-check.
"""
import itertools
import socket
import ssl
import threading
import time

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
        self.handshake_failures = 0
        self.port = None
        self.messages = []
        self.connections = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._listener = None
        self._conns = set()
        self._threads = []

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        """Listens (again) on 127.0.0.1:`port` (a free port on the first start)."""
        if self._listener:
            raise RuntimeError("the HL7 listener is already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(16)
        listener.settimeout(0.1)  # the accept loop checks for stop() this often
        self.port = listener.getsockname()[1]
        self._stop.clear()
        self._listener = listener
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self, timeout=10.0):
        """Closes the listening socket and every open connection, and waits for the threads."""
        self._stop.set()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._listener:
            self._listener.close()
            self._listener = None
        for conn in conns:
            conn.close()

    def wait_messages(self, n, timeout=30.0):
        """Polls until at least `n` messages arrived; returns a copy of `messages`."""
        wait_for(lambda: len(self.messages) >= n, timeout, what=f"{n} HL7 messages")
        with self._lock:
            return list(self.messages)

    def _spawn(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _accept_loop(self, listener):
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(0.1)
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._conns.add(conn)
                self.connections += 1
            self._spawn(self._serve, conn)
        listener.close()  # no new connection queues up while stop() finishes

    def _handshake(self, conn):
        """`conn` over TLS (the client's certificate required), or None when the handshake
        failed."""
        certificate, key, ca = self.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certificate, key)
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED
        conn.settimeout(10)
        try:
            wrapped = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.handshake_failures += 1
            return None
        wrapped.settimeout(0.1)
        subject = dict(x[0] for x in wrapped.getpeercert()["subject"])
        with self._lock:
            self.peer_subjects.append(subject)
            self._conns.discard(conn)
            self._conns.add(wrapped)
        return wrapped

    def _serve(self, conn):
        """Reads frames until the peer closes or stop(): several per connection, in any chunks."""
        buffer = b""
        if self.tls:
            plain, conn = conn, self._handshake(conn)
            if conn is None:
                with self._lock:
                    self._conns.discard(plain)
                plain.close()
                return
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                buffer += data
                while True:
                    start = buffer.find(VT)
                    if start < 0:
                        buffer = b""  # bytes outside a frame: dropped
                        break
                    end = buffer.find(FS + CR, start)
                    if end < 0:
                        buffer = buffer[start:]
                        break
                    message = buffer[start + 1:end].decode("utf-8", errors="replace")
                    buffer = buffer[end + 2:]
                    with self._lock:
                        self.messages.append(message)
                    if not self.silent:
                        ack = ack_for(message, self.ack_code, f"ACK{next(self._ids)}")
                        conn.sendall(VT + ack.encode("utf-8") + FS + CR)
        except OSError:
            return  # reset by the peer, or shut down by stop()
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()


def _self_check():
    import hl7
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
