#!/usr/bin/python3
"""A throwaway PostgreSQL cluster for tests and benchmarks.

initdb in a new temporary directory, the server on 127.0.0.1 at a free port and on a Unix socket
inside that directory, run by an unprivileged user (`postgres` when this runs as root: the server
refuses root), password authentication over TCP. Stopped (fast shutdown, then SIGKILL) and removed
afterwards. Debian's postgresql-15 provides the programs (deploy/install-deps.sh installs it).

    with PgCluster() as pg:
        pg.dsn          # "host=127.0.0.1 port=… dbname=rdg user=rdg password=…"
        pg.sql("SELECT 1")

As a program, for CTest fixtures and benchmarks (the cluster outlives the command):

    pg_cluster.py start DIR    # DIR/dsn: the connection string (the cluster lives in a
    pg_cluster.py stop DIR     #   temporary directory of its own, named in DIR/root)

The gateway's role may create databases (CREATEDB), so that each test case can start on a fresh
one; it is not a superuser.
"""
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = os.environ.get("RDG_PG_BIN", "/usr/lib/postgresql/15/bin")
DATABASE = "rdg"
ROLE = "rdg"  # what the gateway connects as: owns its database, no superuser


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, root=None):
        """`root`: an empty directory to hold the cluster (default: a new temporary one)."""
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="rdg-pg-")
        self.data = os.path.join(self.root, "data")
        self.socket_dir = self.root
        self.log_path = os.path.join(self.root, "server.log")
        self.port = None
        self.password = None
        self.as_user = []
        if os.geteuid() == 0:  # the server refuses to run as root
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs the 'postgres' user "
                                   "(apt-get install postgresql-15)") from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
            os.chmod(self.root, 0o700)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self):
        return (f"host=127.0.0.1 port={self.port} dbname={DATABASE} user={ROLE} "
                f"password={self.password} connect_timeout=5")

    def _run(self, argv, **kw):
        return subprocess.run(self.as_user + argv, check=True, capture_output=True, text=True,
                              timeout=120, **kw)

    def start(self, attempts=5):
        if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
            raise RuntimeError(f"{PG_BIN}/initdb not found: apt-get install postgresql-15")
        pwfile = os.path.join(self.root, "superuser.pw")
        with open(pwfile, "w") as f:
            f.write(secrets.token_hex(16) + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                   "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"])
        os.unlink(pwfile)
        for attempt in range(attempts):
            self.port = _free_port()  # another process may take it first: then try another
            try:
                self._run([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", "60",
                           "-D", self.data, "-l", self.log_path, "-o",
                           f"-p {self.port} -k {self.socket_dir} "
                           f"-c listen_addresses=127.0.0.1 -c max_connections=200 "
                           # In the data directory, so that a killed cluster leaves no
                           # segment behind in /dev/shm.
                           f"-c dynamic_shared_memory_type=mmap"])
                break
            except subprocess.CalledProcessError:
                if attempt == attempts - 1:
                    raise RuntimeError(f"PostgreSQL did not start; see {self.log_path}")
        self.password = secrets.token_hex(16)
        self.superuser_sql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
        self.superuser_sql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        return self

    def pause(self):
        """Stops the server (fast shutdown: clients' connections are closed), keeping its data."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast",
                   "-D", self.data])

    def resume(self):
        """Starts the paused server again at the same port."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", "60", "-D", self.data,
                   "-l", self.log_path, "-o",
                   f"-p {self.port} -k {self.socket_dir} "
                   f"-c listen_addresses=127.0.0.1 -c max_connections=200 "
                   f"-c dynamic_shared_memory_type=mmap"])

    def superuser_sql(self, sql, database="postgres"):
        """Runs `sql` as the superuser over the Unix socket; returns psql's unaligned output."""
        return self._run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-h", self.socket_dir, "-p", str(self.port), "-U", "postgres",
                          "-d", database, "-c", sql]).stdout

    def sql(self, sql):
        """Runs `sql` as the gateway's role in its database."""
        return self.superuser_sql(f"SET ROLE {ROLE}; {sql}", DATABASE)

    def stop(self):
        """Stops the server and removes the cluster. The data is thrown away, so the server is
        killed, not shut down: pg_ctl's fast or even immediate stop waited up to 30 s here for
        backends of gateways that had been killed."""
        if self.port is not None:
            self._kill()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill(self):
        """SIGKILL to the postmaster's process group (pg_ctl starts it in a session of its own,
        so its backends are in that group), then waits for the postmaster to be gone."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return  # dead, not yet reaped by its parent
            except (OSError, IndexError):
                return
            time.sleep(0.02)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def fresh_database(dsn):
    """Creates a new, empty database through `dsn` (as its role, which may CREATEDB); returns
    the connection string of the new database."""
    name = "t_" + secrets.token_hex(8)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}",
                    dsn], check=True, capture_output=True, timeout=60)
    return f"{dsn} dbname={name}"  # libpq: the last dbname= wins


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.exit(__doc__)
    state = os.path.abspath(argv[2])
    if argv[1] == "start":
        stop(state)  # a cluster a killed run left behind
        os.makedirs(state, exist_ok=True)
        cluster = PgCluster()
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        with open(os.path.join(state, "root"), "w") as f:
            f.write(cluster.root + "\n")
        with open(os.path.join(state, "dsn"), "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(cluster.dsn + "\n")
        print(f"PostgreSQL on 127.0.0.1:{cluster.port}, cluster in {cluster.root}")
    else:
        stop(state)


def stop(state):
    """Stops and removes the cluster that `start STATE` made, if any."""
    try:
        with open(os.path.join(state, "root")) as f:
            root = f.read().strip()
    except OSError:
        return
    if os.path.isdir(root):
        cluster = PgCluster(root)
        cluster.port = 0
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    for name in ("root", "dsn"):
        try:
            os.unlink(os.path.join(state, name))
        except OSError:
            pass


if __name__ == "__main__":
    main(sys.argv)
