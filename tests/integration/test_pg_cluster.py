"""The throwaway PostgreSQL cluster the index's PostgreSQL tests run on (pg_cluster.py): it
starts on loopback at a port of its own, lets the gateway's role in with its password only, keeps
two clusters apart, and leaves nothing behind."""
import os
import subprocess
import unittest

import pg_cluster


def psql(dsn, sql):
    return subprocess.run(["psql", dsn, "-X", "-A", "-t", "-c", sql], capture_output=True,
                          text=True, timeout=30)


class PgClusterTest(unittest.TestCase):
    def test_two_clusters_on_loopback_with_passwords_and_nothing_left(self):
        with pg_cluster.PgCluster() as a, pg_cluster.PgCluster() as b:
            self.assertNotEqual(a.port, b.port)
            out = psql(a.dsn, "SELECT current_user, current_database(), "
                              "current_setting('listen_addresses'), rolsuper FROM pg_roles "
                              "WHERE rolname = current_user")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.strip(), "rdg|rdg|127.0.0.1|f")
            wrong = psql(a.dsn.replace(f"password={a.password}", "password=wrong"), "SELECT 1")
            self.assertNotEqual(wrong.returncode, 0)
            self.assertIn("password authentication failed", wrong.stderr)
            other = psql(a.dsn.replace(f"password={a.password}", f"password={b.password}"),
                         "SELECT 1")
            self.assertNotEqual(other.returncode, 0, "b's password opens a")
            a.sql("CREATE TABLE only_in_a (x int)")
            self.assertIn("does not exist", psql(b.dsn, "SELECT * FROM only_in_a").stderr)
            roots = (a.root, b.root)
        for root in roots:
            self.assertFalse(os.path.exists(root), root)


if __name__ == "__main__":
    unittest.main()
