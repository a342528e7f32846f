"""The edge agent's dead letters (issue 13): an object the gateway fails on is quarantined after a
few attempts while the rest of the outbox drains, and `rdg-clinic agent dead-letters` lists,
retries (bringing the object to the gateway once the cause is fixed) and purges them, each
retry and purge recorded with the operator's name. What the gateway's published limits refuse
is refused at the device instead, also after a restart without the gateway."""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
A700 = "0xa700: Refused: Out of resources"  # a response status as storescu -d prints it


def dead_letters(agent, *args, expect_code=0):
    proc = subprocess.run([os.path.join(harness.BIN_DIR, "rdg-clinic"), "agent", "dead-letters",
                           "--config", agent.config_path, *args], capture_output=True, text=True,
                          timeout=60)
    failed = proc.returncode == 0 if expect_code == "nonzero" else proc.returncode != expect_code
    if failed:
        raise AssertionError(f"dead-letters {args}: exit {proc.returncode}:\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


class CrashingGateway:
    """crashing_gateway.py, restarted on the same port each time it dies (as systemd would)."""

    def __init__(self, pki, store):
        self.pki, self.store = pki, store
        self.port = 0
        self.crashes = 0
        self.proc = None
        self.stopping = False
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True)
        self.thread.start()
        if not self.started.wait(60):
            raise AssertionError("the stand-in gateway did not start")

    def _supervise(self):
        while not self.stopping:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "crashing_gateway.py"), self.pki,
                 str(self.port), self.store], stdout=subprocess.PIPE, text=True, cwd=HERE)
            line = self.proc.stdout.readline().split()
            if line[:1] == ["ready"]:
                self.port = int(line[1])
                self.started.set()
            code = self.proc.wait()
            self.proc.stdout.close()
            if code == 70:
                self.crashes += 1

    def stored(self):
        return sorted(n for n in os.listdir(self.store) if n.endswith(".dcm"))

    def stop(self):
        self.stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.thread.join(30)


class QuarantineTest(harness.GatewayTestCase):

    def test_a_gateway_crashing_object_is_quarantined_while_the_rest_of_the_outbox_drains(self):
        store = tempfile.mkdtemp(dir=self.workdir)
        gateway = CrashingGateway(self.pki, store)
        self.addCleanup(gateway.stop)
        agent = harness.Agent(self.workdir, self.gateway, gateway_address=f"127.0.0.1:{gateway.port}",
                              extra="forwarder { initial_backoff_ms: 50 max_backoff_ms: 500 "
                                    "quarantine_after: 3 }\n")
        agent.start()
        self.addCleanup(agent.stop)
        good = harness.distinct_cts(os.path.join(self.workdir, "good"), 6)
        poison = harness.distinct_cts(os.path.join(self.workdir, "poison"), 1, first=800,
                              description="CRASH-THE-GATEWAY")
        agent.storescu(*good[:3], *poison, *good[3:])

        status = harness.wait_for(
            lambda: (lambda s: s if s["pending"] == 0 and s["dead_letter"] == 1 else None)(
                agent.status()), timeout=180, interval=0.2, what="the outbox drained")
        listed = json.loads(dead_letters(agent, "--json").stdout)
        print(f"\n  gateway crashes: {gateway.crashes}; sent {status['sent']}, dead "
              f"{status['dead_letter']}; reason: {listed[0]['reason'][:160]}")
        self.assertEqual(gateway.crashes, 3)
        self.assertEqual(status["sent"], 6)
        self.assertEqual(len(gateway.stored()), 6)
        self.assertEqual(len(listed), 1)
        self.assertIn("the gateway failed while processing this object", listed[0]["reason"])
        self.assertEqual(listed[0]["source"], "dicom MODALITY1")
        self.assertTrue(os.path.exists(listed[0]["file"]))
        human = dead_letters(agent).stdout
        self.assertIn(f"#{listed[0]['id']}", human)
        self.assertIn("dicom MODALITY1", human)

        # The gateway is fixed (upgraded); the operator queues the object again.
        open(os.path.join(store, "FIXED"), "w").close()
        retried = dead_letters(agent, "--retry", str(listed[0]["id"]))
        self.assertIn("1 dead letter queued again", retried.stdout)
        agent.wait_drained(expect_sent=7, timeout=60)
        self.assertEqual(len(gateway.stored()), 7)
        self.assertEqual(gateway.crashes, 3)
        self.assertEqual(json.loads(dead_letters(agent, "--json").stdout), [])
        self.assertEqual(os.listdir(os.path.join(agent.data_dir, "dead-letter")), [])
        self.assertIsNone(agent.proc.poll(), "the agent died")


class DeadLetterToolsTest(harness.GatewayTestCase):

    def set_gateway_limit(self, max_object_bytes):
        """Restarts the gateway (same port and data) with another limits.max_object_bytes."""
        self.gateway.stop()
        with open(self.gateway.config_path) as f:
            config = f.read()
        config = re.sub(r"\nlimits \{[^}]*\}\n", "\n", config)
        with open(self.gateway.config_path, "w") as f:
            f.write(config + f"limits {{ max_object_bytes: {max_object_bytes} "
                             f"max_chunk_bytes: {min(max_object_bytes, 4 << 20)} }}\n")
        self.gateway.start()

    def test_dead_letters_retry_brings_a_dead_letter_to_the_gateway_once_the_cause_is_fixed(self):
        # Short retry pauses: the gateway restarts twice below.
        agent = harness.Agent(self.workdir, self.gateway,
                              extra="forwarder { initial_backoff_ms: 50 max_backoff_ms: 1000 }\n")
        agent.start()
        self.addCleanup(agent.stop)
        harness.wait_for(lambda: agent.rows("SELECT 1 FROM agent_state WHERE key = ?",
                                            "gateway_limits"), what="the agent knows the limits")
        # The gateway is then restarted with a limit too low for CTs (a configuration mistake):
        # the agent, still checking with what the gateway said before, accepts three CTs, which
        # the gateway refuses.
        self.set_gateway_limit(20000)
        cts = harness.distinct_cts(os.path.join(self.workdir, "cts"), 3)
        agent.storescu(*cts)
        harness.wait_for(lambda: agent.status()["dead_letter"] == 3, timeout=60,
                         what="three dead letters")
        listed = json.loads(dead_letters(agent, "--json").stdout)
        self.assertEqual(len(listed), 3)
        for d in listed:
            self.assertEqual(d["kind"], "DICOM")
            self.assertGreater(d["size"], 20000)
            self.assertIn("20000", d["reason"].replace(",", ""))
        print(f"\n  dead letter: {listed[0]['reason'][:160]}")

        # One was never wanted: removed for good, and the removal is on record.
        purged = dead_letters(agent, "--purge", str(listed[2]["id"]))
        self.assertIn("removed", purged.stdout)
        self.assertFalse(os.path.exists(listed[2]["file"]))
        actions = agent.rows("SELECT action, item, actor, detail FROM operator_actions")
        self.assertEqual(len(actions), 1)
        self.assertEqual(actions[0][:2], ("purge", listed[2]["id"]))
        self.assertTrue(actions[0][2])
        self.assertIn(listed[2]["label"], actions[0][3])
        # Mistakes are named.
        wrong = dead_letters(agent, "--retry", "999", expect_code=1)
        self.assertIn("item 999 is not a dead letter", wrong.stderr)
        both = dead_letters(agent, "--retry", "1", "--purge", "2", expect_code="nonzero")
        self.assertIn("excludes", both.stderr)

        # The gateway's limit is fixed; nothing reaches it until the operator says so.
        self.set_gateway_limit(100 << 20)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(0,)])
        retried = dead_letters(agent, "--all")
        self.assertIn("2 dead letters queued again", retried.stdout)
        agent.wait_drained(expect_sent=2, timeout=60)
        self.assertEqual(self.gateway.query("SELECT COUNT(*) FROM objects"), [(2,)])
        self.assertEqual(agent.status()["dead_letter"], 0)
        actions = agent.rows("SELECT action FROM operator_actions ORDER BY id")
        self.assertEqual([a for (a,) in actions], ["purge", "retry", "retry"])
        self.assertEqual(os.listdir(os.path.join(agent.data_dir, "dead-letter")), [])
        self.assert_gateway_alive()


class GatewayLimitsTest(harness.GatewayTestCase):

    extra_config = "limits { max_object_bytes: 20000 max_chunk_bytes: 20000 }\n"

    def test_the_gateways_limits_are_checked_at_the_device(self):
        # What the gateway would refuse is refused to the device, not acknowledged and then
        # dead-lettered: the agent checks with the limits the gateway publishes.
        agent = harness.Agent(self.workdir, self.gateway)
        agent.start()
        self.addCleanup(agent.stop)
        harness.wait_for(lambda: "objects up to 20000 bytes" in agent.log(),
                         what="the agent adopted the gateway's limits")
        cts = harness.distinct_cts(os.path.join(self.workdir, "cts"), 2)
        # -nh: go on after a refusal, as a device sends the rest of its batch; -d: show the
        # responses with their Error Comment.
        refused = agent.storescu(*cts, check=False, options=("-nh", "-d"))
        said = refused.stdout + refused.stderr
        print(f"\n  CT over the gateway's limit: {said.count(A700)} responses A700")
        self.assertEqual(said.count(A700), 2, said)
        self.assertIn("the gateway accepts at most 20000", said)
        status = agent.status()
        self.assertEqual((status["pending"], status["dead_letter"], status["sent"]), (0, 0, 0))

        # The gateway's answer is kept: restarted while the gateway is down, the agent still
        # checks with it.
        agent.stop()
        self.gateway.stop()
        agent.start()
        again = agent.storescu(cts[0], check=False, options=("-nh", "-d"))
        self.assertEqual((again.stdout + again.stderr).count(A700), 1)
        self.assertIn("kept from the gateway's last answer", agent.log())
        self.assertEqual(agent.status()["pending"], 0)
