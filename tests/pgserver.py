"""A throwaway PostgreSQL server for the tests: its own cluster, started and removed by the suite.

`running_server()` runs initdb and pg_ctl (Debian's, from /usr/lib/postgresql/*/bin, which
scripts/setup.sh installs for the tests) in a new directory under the system temp dir, as the
`postgres` system user when the tests run as root (initdb refuses root). The server listens on
127.0.0.1 only, on a free port, with its Unix socket inside that directory; TCP connections
need a password (scram-sha-256), and the tests connect as an ordinary role that owns one
database, as a node would. The superuser is reachable only through the socket. On leaving the
block, also on an error, the server is stopped and the directory removed.

Tests use the session fixture `pg_server` (one cluster per xdist worker): import it from here.
Debian's own cluster (port 5432) is neither needed nor touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROLE = "vpo_stats"
DATABASE = "vpo_stats"
SUPERUSER = "postgres"
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "password_encryption": "'scram-sha-256'",
    "fsync": "off",  # a cluster thrown away after the tests: durability is not the question
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


def bindir() -> Path:
    """The newest PostgreSQL's programs; a clear failure naming the setup when there is none."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise AssertionError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run "
            "VPO_STATS_EXTRAS=test bash scripts/setup.sh (it runs apt-get install postgresql)"
        )
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    """``command`` as the `postgres` system user when we are root (initdb and postgres refuse
    root), else as ourselves."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PgServer:
    """A running throwaway cluster: where it is, and the role and database the tests use."""

    root: Path
    port: int
    password: str
    bin: Path
    started_in: float = 0.0  # seconds from nothing to a server answering the role
    host: str = "127.0.0.1"
    role: str = ROLE
    database: str = DATABASE

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(
        self, *, password: str | None = None, database: str | None = None, user: str | None = None
    ) -> str:
        """The URL a node would use: the role and its password over TCP on 127.0.0.1."""
        secret = self.password if password is None else password
        who = user or self.role
        auth = f"{who}:{secret}@" if secret else f"{who}@"
        return f"postgresql://{auth}{self.host}:{self.port}/{database or self.database}"

    def admin(self, sql: Any, *params: Any, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run ``sql`` as the superuser, through the Unix socket (autocommit); answers its rows."""
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            autocommit=True,
        ) as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        """A new empty database owned by the role (one per test that wants its own); its URL."""
        from psycopg import sql

        self.admin(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(*map(sql.Identifier, (name, self.role)))
        )
        return self.url(database=name)

    def schema_url(self, name: str) -> str:
        """A new empty schema owned by the role, and the URL whose search_path names it: a
        test's own stats store on the shared server, cheaper than a database per test."""
        from psycopg import sql

        self.admin(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(name), sql.Identifier(self.role)
            ),
            database=self.database,
        )
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([str(self.bin / "pg_ctl"), "-D", str(self.data), *args], self.root, check)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server (fast: open sessions are ended); the cluster stays for start()."""
        self.pg_ctl("-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self.pg_ctl("status", check=False).returncode == 0

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""


def _run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    done = subprocess.run(
        _as_postgres(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    return done


def _make_root(name: str) -> Path:
    """A new directory in the system temp dir (pytest's own are closed to other users), owned
    by the user the server runs as, open to no one else."""
    root = Path(tempfile.mkdtemp(prefix=f"vpo-stats-pg-{name}-"))
    if os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    root.chmod(0o700)
    return root


@contextlib.contextmanager
def running_server(
    name: str = "test", settings: dict[str, str] | None = None
) -> Iterator[PgServer]:
    """A new cluster, started, with the role and its database; stopped and removed after.
    ``settings`` go over the tests' own (the benchmark's server is durable, say)."""
    started = time.monotonic()
    programs = bindir()
    root = _make_root(name)
    server = PgServer(root, 0, secrets.token_urlsafe(18), programs)
    watcher: subprocess.Popen[bytes] | None = None
    try:
        _run(
            [str(programs / "initdb"), "-D", str(server.data), "-U", SUPERUSER,
             "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            root,
        )  # fmt: skip
        _run(["mkdir", "-m", "0700", str(server.socket_dir)], root)
        for attempt in range(5):  # a free port can be taken before the server binds it
            server.port = _free_port()
            conf = {**SETTINGS, **(settings or {}), "port": str(server.port),
                    "unix_socket_directories": f"'{server.socket_dir}'"}  # fmt: skip
            text = "".join(f"{key} = {value}\n" for key, value in conf.items())
            _write_as_postgres(server.data / "postgresql.auto.conf", text, root)
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 4 or "could not bind" not in server.log().lower():
                    raise
        # the role's password is set over the socket, never on a command line
        from psycopg import sql

        server.admin(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(server.password)
            )
        )
        server.admin(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(*map(sql.Identifier, (DATABASE, ROLE)))
        )
        server.started_in = time.monotonic() - started
        watcher = _watch(server)
        yield server
    finally:
        with contextlib.suppress(Exception):
            if server.data.exists() and server.running():
                server.stop()
        shutil.rmtree(root, ignore_errors=True)
        if watcher is not None:
            watcher.kill()
            watcher.wait()


# stops the server and removes its directory once the process that started it is gone, even
# by SIGKILL (a test run killed by a timeout): a throwaway server must never outlive its tests
_WATCH = """
pid=$1; shift
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$ROOT"
"""


def _watch(server: PgServer) -> subprocess.Popen[bytes]:
    stop = _as_postgres([str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "immediate",
                         "-w", "stop"])  # fmt: skip
    return subprocess.Popen(
        ["sh", "-c", _WATCH, "watch", str(os.getpid()), *stop],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ROOT": str(server.root)},
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the test run's process group: it outlives a kill of it
    )


def _write_as_postgres(path: Path, text: str, cwd: Path) -> None:
    """Write a file in the cluster (owned by the server's user, as postgres wants it)."""
    done = subprocess.run(
        _as_postgres(["sh", "-c", 'cat > "$1"', "sh", str(path)]),
        input=text,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot write {path}: {done.stderr}")


@pytest.fixture(scope="session")
def pg_server(worker_id: str) -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for this test process (each xdist worker has its own)."""
    with running_server(worker_id) as server:
        yield server
