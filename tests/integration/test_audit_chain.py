"""The tamper-evident audit log (issue 17): every record is a link of a SHA-256 hash chain, the
gateway signs checkpoints of it, and `rdg-admin audit verify` — recomputing everything on the
administrator's side with the platform CA — names each record altered, deleted or slipped in
directly in SQLite, with the append-only triggers dropped, while the gateway runs."""
import hashlib
import os
import sqlite3
import time

import harness

TRIGGERS = {
    "audit_log_no_update": "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                           "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "audit_log_no_delete": "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                           "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
}


class Admin(harness.Reader):
    program = "rdg-admin"


def canonical(row):
    """The chain's canonical encoding (storage/base/audit_chain.h), written again independently:
    "RDG-AUDIT-V1", then each field as <byte length>:<bytes>."""
    out = b"RDG-AUDIT-V1"
    for value in row:
        data = str(value).encode()
        out += str(len(data)).encode() + b":" + data
    return out


CHAINED = "seq, at, institution, user, role, action, exam_id, detail, outcome, patient_id, peer, subject"


# Tampering is done to the SQLite file; on PostgreSQL the triggers refuse the gateway's role
# (unit.PostgresAuditStoreTest), and the chain and its checkpoints are verified the same way.
tampers_with_sqlite = harness.sqlite_only("tampers with the index file")


class AuditChainTest(harness.GatewayTestCase):
    extra_config = "audit_checkpoint_seconds: 1\nhousekeeping_seconds: 1\n"

    def admin(self):
        return Admin(self.gateway, "admin")

    def verify(self, *args, expect_code=0):
        proc = self.admin().run("audit", "verify", *args)
        self.assertEqual(proc.returncode, expect_code, proc.stdout + proc.stderr)
        return proc.stdout

    def some_history(self, uploads=3):
        files = harness.distinct_cts(os.path.join(self.workdir, "in"), uploads)
        for path in files:
            exam = self.clinic().json("upload", path)["exams"][0]["exam_id"]
            self.clinic().json("exam", exam)
            self.clinic().json("exam", exam)
        self.admin().run("queues", check=True)

    def tamper(self, *statements):
        """Runs `statements` in one transaction with the append-only triggers dropped, as an
        insider with write access to the index would."""
        db = sqlite3.connect(os.path.join(self.gateway.data_dir, "index.sqlite"), timeout=30)
        try:
            with db:
                for name in TRIGGERS:
                    db.execute(f"DROP TRIGGER {name}")
                for sql, params in statements:
                    db.execute(sql, params)
                for sql in TRIGGERS.values():
                    db.execute(sql)
        finally:
            db.close()

    def test_an_untouched_log_verifies_with_its_signed_checkpoints(self):
        self.some_history()
        self.gateway.stop()  # a clean stop signs the chain's end
        self.gateway.start()
        out = self.verify()
        print("\n  " + out.strip().replace("\n", "\n  "))
        self.assertIn(": intact", out)
        self.assertRegex(out, r"[1-9]\d* signed checkpoints verified")
        # The chain is what the documented encoding gives, recomputed here from the rows.
        rows = self.gateway.query(f"SELECT {CHAINED}, prev_hash, hash FROM audit_log ORDER BY seq")
        link = bytes(32)
        for row in rows:
            self.assertEqual(row[-2], link, f"record {row[0]}")
            link = hashlib.sha256(link + canonical(row[:-2])).digest()
            self.assertEqual(row[-1], link, f"record {row[0]}")
        self.assertGreaterEqual(len(rows), 10)
        self.assertEqual(self.verify("--from", "4").count("records (4 to"), 1)

    @tampers_with_sqlite
    def test_edited_deleted_and_inserted_records_are_each_named(self):
        self.some_history()
        # Let a checkpoint cover the history, so that rewriting the chain is caught as well.
        harness.wait_for(lambda: self.gateway.query(
            "SELECT COUNT(*) FROM audit_checkpoints")[0][0] > 0, what="a checkpoint")
        last = self.gateway.query("SELECT MAX(seq) FROM audit_log")[0][0]
        self.assertGreaterEqual(last, 8)
        victim = self.gateway.query("SELECT user FROM audit_log WHERE seq = 3")[0][0]
        self.tamper(
            # Re-attribute a record to someone else and rewrite its detail.
            ("UPDATE audit_log SET user = 'somebody-else', detail = 'nothing to see' "
             "WHERE seq = 3", ()),
            # Remove one.
            ("DELETE FROM audit_log WHERE seq = 6", ()),
            # Slip one in at the end, without a link.
            ("INSERT INTO audit_log (at, institution, user, role, action, exam_id, detail) "
             "VALUES (?, 'county-a', 'reader-a-rad', 2, 'fetch_exam', 'ex-0', '')",
             (int(time.time() * 1e6),)),
        )
        self.assertNotEqual(victim, "somebody-else")
        self.admin().run("queues", check=True)  # the gateway goes on writing
        out = self.verify(expect_code=1)
        print("\n  " + out.strip().replace("\n", "\n  "))
        self.assertIn("record 3 was altered: its content does not match its link", out)
        self.assertIn("record 6 is missing (deleted)", out)
        self.assertIn(f"record {last + 1} was inserted: it carries no chain link", out)

    @tampers_with_sqlite
    def test_a_record_slipped_in_with_a_correct_link_is_caught_by_the_next(self):
        self.some_history(uploads=1)
        last, link = self.gateway.query(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")[0]
        forged = (last + 1, int(time.time() * 1e6), "county-a", "reader-a-rad", 2, "view_prior",
                  "ex-0", "", "", "", "", "")
        self.tamper(("INSERT INTO audit_log (" + CHAINED + ", prev_hash, hash) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (*forged, link, hashlib.sha256(link + canonical(forged)).digest())))
        self.admin().run("queues", check=True)  # the gateway chains on from its own last record
        out = self.verify(expect_code=1)
        print("\n  " + out.strip().replace("\n", "\n  "))
        self.assertIn(f"record {last + 1} was inserted: record {last + 2} continues from "
                      f"record {last}", out)

    @tampers_with_sqlite
    def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(self):
        self.some_history(uploads=2)
        self.gateway.stop()  # the stop signs a checkpoint at the last record
        checkpoint = self.gateway.query("SELECT MAX(seq) FROM audit_checkpoints")[0][0]
        rows = self.gateway.query(f"SELECT {CHAINED}, prev_hash FROM audit_log ORDER BY seq")
        # An insider edits record 2 and recomputes every link after it: the chain itself holds.
        statements, link = [], None
        for row in rows:
            fields, prev = list(row[:-1]), row[-1]
            if link is None and fields[0] < 2:
                continue
            if fields[0] == 2:
                fields[3], link = "somebody-else", prev
            new = hashlib.sha256(link + canonical(fields)).digest()
            statements.append(("UPDATE audit_log SET user = ?, prev_hash = ?, hash = ? "
                               "WHERE seq = ?", (fields[3], link, new, fields[0])))
            link = new
        self.tamper(*statements)
        self.gateway.start()
        out = self.verify(expect_code=1)
        print("\n  " + out.strip().replace("\n", "\n  "))
        self.assertNotIn("was altered", out)
        self.assertIn(f"record {checkpoint} differs from what the gateway signed at", out)


    @tampers_with_sqlite
    def test_records_removed_from_the_end_are_named_by_the_checkpoint_after_them(self):
        self.some_history(uploads=2)
        self.gateway.stop()  # signs the end
        last = self.gateway.query("SELECT MAX(seq) FROM audit_log")[0][0]
        self.assertEqual(self.gateway.query("SELECT MAX(seq) FROM audit_checkpoints")[0][0], last)
        # The last three records go, and the counter is put back so nothing looks skipped.
        self.tamper(("DELETE FROM audit_log WHERE seq > ?", (last - 3,)),
                    ("UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit_log'", (last - 3,)))
        self.gateway.start()
        out = self.verify(expect_code=1)
        print("\n  " + out.strip().replace("\n", "\n  "))
        self.assertIn(f"checkpoint at record {last} names a record that is missing", out)

    @tampers_with_sqlite
    def test_removed_checkpoints_are_named(self):
        self.some_history(uploads=2)
        self.gateway.stop()
        self.gateway.start()
        self.admin().run("queues", check=True)
        self.gateway.stop()  # at least two checkpoints now
        seqs = [r[0] for r in self.gateway.query("SELECT seq FROM audit_checkpoints ORDER BY seq")]
        self.assertGreaterEqual(len(seqs), 2)
        db = sqlite3.connect(os.path.join(self.gateway.data_dir, "index.sqlite"))
        with db:
            db.execute("DROP TRIGGER audit_checkpoints_no_delete")
            db.execute("DELETE FROM audit_checkpoints WHERE seq = ?", (seqs[-2],))
        db.close()
        self.gateway.start()
        out = self.verify(expect_code=1)
        print("\n  " + out.strip().replace("\n", "\n  "))
        self.assertRegex(out, rf"checkpoint at record {seqs[-1]} does not follow the checkpoint at "
                              rf"\d+: the checkpoint\(s\) between were removed|the checkpoint\(s\) "
                              rf"before the one at record {seqs[-1]} were removed")


if __name__ == "__main__":
    harness.unittest.main()
