"""Find a PostgreSQL server for the tests, or start a throwaway one.

Order: $TEST_DATABASE_URL; the server these machines run at 127.0.0.1:5432 (trust auth,
database `test`); a temporary cluster from initdb/pg_ctl (on PATH, or Debian's
/usr/lib/postgresql/<version>/bin). Each test run
(each xdist worker) gets its own fresh database on that server, dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

from bot.config import normalise_database_url

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class PostgresServer:
    admin_dsn: str  # libpq URL of a database we may CREATE DATABASE from
    source: str
    _cluster: Path | None = None
    _run_as: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        # One per xdist worker (each is its own session); the uuid keeps runs apart.
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        name = f"imglib_test_{f'{worker}_' if worker else ''}{uuid.uuid4().hex[:10]}"
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        base = self.admin_dsn.rsplit("/", 1)[0]
        return normalise_database_url(f"{base}/{name}")

    def close(self) -> None:
        for name in self.databases:
            with contextlib.suppress(psycopg2.Error):
                self._execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        if self._cluster is not None:
            self.stop_cluster(mode="immediate")
            shutil.rmtree(self._cluster, ignore_errors=True)

    def stop_cluster(self, *, mode: str = "fast") -> str:
        """Stop the throwaway cluster this object started (`pg_ctl stop -m mode`); "" when
        it stopped, else pg_ctl's complaint. The chaos soak's Postgres restart is this, then
        `start_cluster`: clients lose every connection, as when a managed server restarts."""
        return self._pg_ctl("-m", mode, "stop")

    def start_cluster(self) -> str:
        """Start the throwaway cluster again, on the same port: "" when it answers.

        Without fsync: a commit then waits for no disk flush. Nothing the tests check needs
        one (the soak's restart is a clean shutdown, which writes everything; no test kills
        the server), and on a shared host the disk stalls for up to a second at a time
        (iowait 25-30 %, bench/README.md), which decided the soak's ack figure: the last
        session's code and this one's failed its 100 ms p99 at 118-289 ms with fsync, and
        passed at 68 ms without. bench/ack_latency.py measures the machine's own server,
        fsync and all."""
        if self._cluster is None:
            return "not a cluster this process started"
        return self._pg_ctl(
            "-o",
            f"-p {self.port} -k {self._cluster} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-l",
            str(self._cluster / "log"),
            "-w",
            "start",
        )

    @property
    def port(self) -> int:
        return int(self.admin_dsn.rsplit(":", 1)[1].split("/", 1)[0])

    def _pg_ctl(self, *args: str) -> str:
        if self._cluster is None:
            return "not a cluster this process started"
        result = subprocess.run(
            [*self._run_as, _tool("pg_ctl") or "pg_ctl", "-D", str(self._cluster / "data"), *args],
            check=False,
            capture_output=True,
            text=True,
        )
        return "" if result.returncode == 0 else (result.stderr or result.stdout).strip()[:200]

    def _execute(self, statement: sql.Composable) -> None:
        connection = psycopg2.connect(self.admin_dsn, connect_timeout=5)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()


def _reachable(dsn: str) -> str | None:
    try:
        psycopg2.connect(dsn, connect_timeout=3).close()
    except psycopg2.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def find_postgres() -> tuple[PostgresServer | None, str]:
    """Return a server and where it came from, or None and why none could be had."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        dsn = configured.replace("postgresql+psycopg2://", "postgresql://").replace(
            "postgres://", "postgresql://", 1
        )
        error = _reachable(dsn)
        if error:
            return None, f"TEST_DATABASE_URL is set but unreachable: {error}"
        return PostgresServer(dsn, "TEST_DATABASE_URL"), "TEST_DATABASE_URL"
    if _reachable(LOCAL_URL) is None:
        return PostgresServer(LOCAL_URL, "127.0.0.1:5432"), "the server at 127.0.0.1:5432"
    if cluster_tools_missing() is None:
        return throwaway_cluster()
    return None, (
        "no PostgreSQL: TEST_DATABASE_URL is unset, nothing answers at 127.0.0.1:5432, "
        f"and initdb/pg_ctl are neither on PATH nor in {DEBIAN_BIN}"
    )


DEBIAN_BIN = "/usr/lib/postgresql/<version>/bin"


def _tool(name: str) -> str | None:
    """The full path of a PostgreSQL server program: on PATH, else the newest version's in
    Debian's /usr/lib/postgresql (not on PATH there)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return str(versions[-1]) if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster_tools_missing() -> str | None:
    """Why this machine cannot start a throwaway cluster (no initdb or pg_ctl), or None."""
    if _tool("initdb") and _tool("pg_ctl"):
        return None
    return f"initdb and pg_ctl are neither on PATH nor in {DEBIAN_BIN} (apt-get install postgresql)"


def throwaway_cluster() -> tuple[PostgresServer | None, str]:
    """A new cluster from initdb on a free loopback port, trust auth, that `close()` removes;
    or None and why not. Never the machine's shared server: the chaos soak restarts it."""
    missing = cluster_tools_missing()
    if missing:
        return None, missing
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="imglib-pg-"))
    if os.geteuid() == 0:
        # initdb refuses to run as root; use the postgres account when there is one.
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            return None, "initdb cannot run as root and there is no 'postgres' user"
        os.chown(base, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    initdb = [
        *run_as,
        str(_tool("initdb")),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
    ]
    result = subprocess.run(initdb, capture_output=True, text=True, check=False)
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    server = PostgresServer(dsn, f"a throwaway cluster on port {port}", base, run_as)
    problem = result.stderr.strip()[:200] if result.returncode else server.start_cluster()
    if problem:
        shutil.rmtree(base, ignore_errors=True)
        return None, f"throwaway cluster failed: {problem}"
    for _ in range(50):
        if _reachable(dsn) is None:
            break
        time.sleep(0.1)
    return server, server.source
