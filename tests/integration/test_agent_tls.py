"""DICOM over TLS to the edge agent (issue 13): a device with a certificate of the platform CA
verifies with echoscu and sends a CT with storescu over TLS, which reaches the gateway; plain
DICOM on the TLS port and a device without a certificate are refused; idle connections on the
TLS port and clients that send half an association request over TLS do not hold up a device
(the handshake happens outside any lock, the request is passed on only once complete)."""
import os
import socket
import ssl
import subprocess
import time

import harness


class AgentTlsTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.agent = harness.Agent(
            self.workdir, self.gateway,
            dicom_options=f'tls {{ listen: "127.0.0.1:0" certificate: "{self.pki}/agent-dicom-a1.pem" '
                          f'private_key: "{self.pki}/agent-dicom-a1.key" '
                          f'device_ca: "{self.pki}/ca.pem" }}')
        self.agent.start()
        self.addCleanup(self.agent.stop)

    def tls_options(self, device="clinic-b1"):
        """A device's TLS options: its key and certificate (any of the platform CA) and the CA
        that signed the agent's certificate."""
        return ["+tls", f"{self.pki}/{device}.key", f"{self.pki}/{device}.pem",
                "+cf", f"{self.pki}/ca.pem"]

    def dcmtk(self, tool, *args, timeout=60):
        return subprocess.run([tool, *args, "-aet", "MODALITY1", "-aec", "RDG-AGENT", "127.0.0.1",
                               str(self.agent.dicom_tls_port)], capture_output=True, text=True,
                              timeout=timeout)

    def test_a_device_sends_over_tls_and_the_object_reaches_the_gateway(self):
        self.assertTrue(self.agent.dicom_tls_port)
        echo = self.dcmtk("echoscu", *self.tls_options())
        self.assertEqual(echo.returncode, 0, echo.stdout + echo.stderr)
        ct = os.path.join(harness.PYDICOM_FILES, "CT_small.dcm")
        store = subprocess.run(["storescu", "-R", *self.tls_options(), "-aet", "MODALITY1",
                                "-aec", "RDG-AGENT", "127.0.0.1", str(self.agent.dicom_tls_port),
                                ct], capture_output=True, text=True, timeout=120)
        self.assertEqual(store.returncode, 0, store.stdout + store.stderr)
        self.agent.wait_drained(expect_sent=1)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(1,)])

    def test_plain_dicom_and_devices_without_a_certificate_are_refused_on_the_tls_port(self):
        plain = self.dcmtk("echoscu")
        self.assertNotEqual(plain.returncode, 0)
        anonymous = self.dcmtk("echoscu", "+tla", "+cf", f"{self.pki}/ca.pem")
        self.assertNotEqual(anonymous.returncode, 0)
        print(f"\n  plain DICOM on the TLS port: {plain.stderr.strip().splitlines()[-1:]}; "
              f"no device certificate: {anonymous.stderr.strip().splitlines()[-1:]}")
        self.assertIn("TLS connection refused", self.agent.log())
        # The agent still serves a device that does it right.
        self.assertEqual(self.dcmtk("echoscu", *self.tls_options()).returncode, 0)
        self.assertIsNone(self.agent.proc.poll())

    def trickler(self):
        """A TLS client with a device certificate that sends only the start of an
        A-ASSOCIATE-RQ (its header and a few bytes) and then nothing."""
        context = ssl.create_default_context(cafile=f"{self.pki}/ca.pem")
        context.load_cert_chain(f"{self.pki}/clinic-b1.pem", f"{self.pki}/clinic-b1.key")
        raw = socket.create_connection(("127.0.0.1", self.agent.dicom_tls_port), timeout=10)
        s = context.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"\x01\x00\x00\x00\x00\xcd\x00\x01\x00\x00")  # 205 bytes announced, 4 sent
        return s

    def test_idle_connections_on_the_tls_port_do_not_hold_up_a_handshake(self):
        idle = [socket.create_connection(("127.0.0.1", self.agent.dicom_tls_port), timeout=10)
                for _ in range(20)]
        idle += [self.trickler() for _ in range(4)]
        try:
            started = time.monotonic()
            echo = self.dcmtk("echoscu", *self.tls_options())
            took = time.monotonic() - started
        finally:
            for s in idle:
                s.close()
        print(f"\n  echoscu over TLS with 20 idle connections and 4 half-sent association requests "
              f"open: {took:.2f} s")
        self.assertEqual(echo.returncode, 0, echo.stdout + echo.stderr)
        self.assertLess(took, 10)  # the association deadline: it did not wait for any of them
