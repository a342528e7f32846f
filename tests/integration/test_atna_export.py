"""ATNA export (issue 17): every audit record reaches an external audit repository as a DICOM
audit message (PS3.15 A.5) over syslog/TLS (RFC 5425). The repository here is a real rsyslog
(Debian's rsyslog + rsyslog-openssl) on loopback, with mutual TLS; the messages it wrote are
validated against the DICOM audit message schema with xmllint. While the repository is down the
records wait in the audit log — also across a gateway restart — and arrive later, none lost."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request

import harness

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "schemas/dicom-audit-message.rng")
SEQUENCE = re.compile(r'\[meta sequenceId="(\d+)"\] \ufeff(<AuditMessage>.*</AuditMessage>)$')


class Rsyslog:
    """An rsyslogd receiving syslog over TLS (RFC 5425) on loopback and writing each message, as
    received, as one line of a file."""

    def __init__(self, workdir, pki):
        self.dir = os.path.join(workdir, "rsyslog")
        os.makedirs(os.path.join(self.dir, "work"), exist_ok=True)
        self.pki = pki
        self.out = os.path.join(self.dir, "received.log")
        self.port = 0
        self.proc = None

    def start(self):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(f'''
global(workDirectory="{self.dir}/work"
       maxMessageSize="64k"
       defaultNetstreamDriver="ossl"
       defaultNetstreamDriverCAFile="{self.pki}/ca.pem"
       defaultNetstreamDriverCertFile="{self.pki}/gateway.pem"
       defaultNetstreamDriverKeyFile="{self.pki}/gateway.key")
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"
       streamDriver.authMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port="{self.port}" listenPortFileName="{port_file}")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{self.out}" template="raw")
''')
        with open(os.path.join(self.dir, "rsyslogd.log"), "a") as log:
            self.proc = subprocess.Popen(
                ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(self.dir, "rsyslogd.pid")],
                stdout=subprocess.DEVNULL, stderr=log)
        if self.port == 0:  # rsyslogd names the port it picked
            harness.wait_for(lambda: os.path.exists(port_file) and harness.read_bytes(port_file),
                             timeout=20, what="rsyslogd listening")
            self.port = int(harness.read_bytes(port_file).decode().strip())
        else:  # the same port again (it writes no port file then)
            harness.wait_for(self.listening, timeout=20, what="rsyslogd listening again")
        return self

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.proc = None

    def messages(self):
        """{sequenceId: audit message XML} of everything received so far."""
        if not os.path.exists(self.out):
            return {}
        received = {}
        with open(self.out, encoding="utf-8") as f:
            for line in f:
                match = SEQUENCE.search(line.rstrip("\n"))
                if match:
                    received[int(match.group(1))] = match.group(2)
        return received


class AtnaExportTest(harness.GatewayTestCase):

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="rdg-test-")
        self.pki = harness.make_pki()
        self.collector = Rsyslog(self.workdir, self.pki).start()
        self.addCleanup(self.collector.stop)
        self.gateway = harness.Gateway(self.workdir, self.pki, f'''
audit_export {{
  syslog_address: "127.0.0.1:{self.collector.port}"
  server_name: "localhost"
  ca_file: "{self.pki}/ca.pem"
}}
''')
        self.gateway.start()

    def seqs(self):
        return [row[0] for row in self.gateway.query("SELECT seq FROM audit_log ORDER BY seq")]

    def wait_all_received(self, timeout=60):
        # Exports run on the leader only; on PostgreSQL leadership was seen to come 10 s after
        # the start (one housekeeping round), so 30 s was too tight for a loaded machine.
        def complete():
            return set(self.seqs()) <= set(self.collector.messages())
        harness.wait_for(complete, timeout=timeout, interval=0.2,
                         what="every audit record at the repository")
        return self.collector.messages()

    def some_activity(self, n=2):
        exams = [self.clinic().json("upload", p)["exams"][0]["exam_id"]
                 for p in harness.distinct_cts(os.path.join(self.workdir, f"in{len(self.seqs())}"), n)]
        self.assertNotEqual(self.clinic("clinic-b1").run("exam", exams[0]).returncode, 0)
        return exams

    def metric(self, name):
        request = urllib.request.Request(self.gateway.monitoring_url + "/metrics", headers={
            "Authorization": f"Bearer {self.gateway.monitoring_token}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def validate(self, messages):
        """xmllint --relaxng over every message: the DICOM audit message schema."""
        folder = os.path.join(self.workdir, "messages")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for seq, xml in messages.items():
            with open(os.path.join(folder, f"{seq}.xml"), "w", encoding="utf-8") as f:
                f.write(xml)
        proc = subprocess.run(["xmllint", "--noout", "--relaxng", SCHEMA,
                               *sorted(glob.glob(os.path.join(folder, "*.xml")))],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])

    def test_every_record_arrives_as_a_valid_dicom_audit_message(self):
        exam = self.some_activity()[0]
        received = self.wait_all_received()
        print(f"\n  {len(received)} audit records received by rsyslog, all valid under the "
              f"DICOM audit message schema")
        self.validate(received)
        upload, refused = (self.gateway.query(
            "SELECT seq, patient_id FROM audit_log WHERE action = ? AND exam_id = ? "
            "ORDER BY seq LIMIT 1", action, exam)[0] for action in ("upload", "get_exam"))
        self.assertIn('<EventID csd-code="110104"', received[upload[0]])
        self.assertIn(f'ParticipantObjectID="{upload[1]}"', received[upload[0]])
        self.assertIn('UserID="clinic-a1@clinic-a1"', received[upload[0]])
        self.assertIn('NetworkAccessPointID="127.0.0.1"', received[upload[0]])
        self.assertIn('EventOutcomeIndicator="4"', received[refused[0]])
        self.assertIn("CN=clinic-b1,OU=clinic,O=clinic-b1", received[refused[0]])
        # Caught up: what is left is at most the record of the scrape that asks.
        harness.wait_for(lambda: self.metric("rdg_audit_export_backlog") <= 1, timeout=10,
                         what="the backlog emptied")

    def test_records_wait_while_the_repository_is_down_and_none_is_lost(self):
        self.some_activity(1)
        self.wait_all_received()
        self.collector.stop()
        # Records written while the repository is down, and across a gateway restart.
        self.some_activity(2)
        harness.wait_for(lambda: (self.metric("rdg_audit_export_failures_total") or 0) > 0,
                         timeout=20, what="a failed delivery")
        backlog = self.metric("rdg_audit_export_backlog")
        self.assertGreater(backlog, 0)
        self.gateway.stop()
        self.gateway.start()
        self.some_activity(1)
        waiting = len(self.seqs()) - len(self.collector.messages())
        self.collector.start()  # the same port again
        received = self.wait_all_received(timeout=60)
        print(f"\n  repository down: {int(backlog)} records waited (then {waiting} across a "
              f"gateway restart); all {len(self.seqs())} arrived after it came back")
        self.assertEqual(set(self.seqs()) - set(received), set())
        self.validate(received)


if __name__ == "__main__":
    harness.unittest.main()
