"""Issuing certificates from a hospital CA (issue 17): deploy/issue-certificate.sh checks the new
certificate against the gateway's configuration with the gateway's own rules
(`rdg-gateway --check-config`), issues it with the profile the gateway expects, and the gateway
accepts it at once — a reader with a Chinese name reads, and the audit log names them."""
import os
import shutil
import subprocess

import harness

SCRIPT = os.path.join(harness.SOURCE_DIR, "deploy/issue-certificate.sh")


class IssueCertificateTest(harness.GatewayTestCase):

    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.workdir, "issued")
        os.makedirs(self.out)
        shutil.copy(os.path.join(self.pki, "ca.pem"), self.out)

    def issue(self, *args, expect=0):
        env = dict(os.environ, RDG_GATEWAY_BIN=os.path.join(harness.BIN_DIR, "rdg-gateway"))
        *options, institution, role, user, name = args
        proc = subprocess.run(
            ["bash", SCRIPT, *options, os.path.join(self.pki, "ca.pem"), harness.ca_key(self.pki),
             self.gateway.config_path, institution, role, user, os.path.join(self.out, name)],
            capture_output=True, text=True, env=env)
        self.assertEqual(proc.returncode, expect, proc.stdout + proc.stderr)
        return proc.stdout + proc.stderr

    def text(self, name):
        return subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                               os.path.join(self.out, name + ".pem")],
                              capture_output=True, text=True, check=True).stdout

    def test_a_reader_issued_by_the_ca_reads_and_is_named_in_the_audit_log(self):
        said = self.issue("county-a", "reader", "李医生", "li")
        print("\n  " + said.strip())
        self.assertIn("CN=李医生", said)
        self.assertEqual(os.stat(os.path.join(self.out, "li.key")).st_mode & 0o777, 0o600)
        self.assertIn("TLS Web Client Authentication", self.text("li"))
        self.assertIn("Non Repudiation", self.text("li"))
        reader = harness.Reader(self.gateway, "li", pki=self.out)
        proc = reader.run("worklist")  # accepted (empty until a desk of the config lists li)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertNotEqual(reader.run("claim", "ex-0000000000000000").returncode, 0)
        harness.wait_for(lambda: self.gateway.query(
            "SELECT institution, user, outcome FROM audit_log WHERE subject = ? AND "
            "action = 'claim_exam'", "CN=李医生,OU=reader,O=county-a"), timeout=10,
            what="the refused claim audited")
        self.assertEqual(self.gateway.query(
            "SELECT institution, user, outcome FROM audit_log WHERE subject = ? AND "
            "action = 'claim_exam'", "CN=李医生,OU=reader,O=county-a"),
            [("county-a", "李医生", "NOT_FOUND")])

    def test_what_the_configuration_does_not_allow_is_refused(self):
        said = self.issue("county-a", "clinic", "someone", "x", expect=1)
        self.assertIn("a clinic certificate cannot be issued for county-a", said)
        self.assertIn("roles there: reader admin", said)
        said = self.issue("county-z", "reader", "someone", "x", expect=1)
        self.assertIn('institution "county-z" is not in', said)
        self.assertIn("clinic-a1", said)  # the configured ones are listed
        self.assertIn("USER must", self.issue("county-a", "reader", "a/OU=admin", "x", expect=1))
        self.assertIn("ROLE must", self.issue("county-a", "root", "a", "x", expect=1))
        self.assertIn("--sm2 is for readers", self.issue("--sm2", "clinic-a1", "clinic", "a", "x",
                                                         expect=1))
        self.assertFalse(os.path.exists(os.path.join(self.out, "x.pem")))
        # Never over an existing pair.
        self.issue("clinic-a1", "clinic", "clinic-a1", "a1")
        self.assertIn("not overwriting", self.issue("clinic-a1", "clinic", "clinic-a1", "a1",
                                                    expect=1))

    def test_an_sm2_reader_gets_a_signing_pair_and_an_ecdsa_pair_for_tls(self):
        self.issue("--sm2", "--days", "30", "county-a", "reader", "王医生", "wang")
        self.assertIn("SM2", self.text("wang"))
        self.assertIn("prime256v1", self.text("wang-tls"))
        self.assertNotIn("Non Repudiation", self.text("wang-tls"))
        tls = harness.Reader(self.gateway, "wang-tls", pki=self.out)
        proc = tls.run("worklist")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


if __name__ == "__main__":
    harness.unittest.main()
