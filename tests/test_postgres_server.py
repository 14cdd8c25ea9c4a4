"""The suite's own PostgreSQL server (tests/pgserver.py): real, password-only on loopback, and
gone after, also when the tests using it fail."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from history import vpo_stats_script
from pgserver import PgServer, running_server


def test_the_server_answers_the_role_with_its_password(pg_server: PgServer) -> None:
    with psycopg.connect(pg_server.url(), connect_timeout=10) as conn:
        user, database, version = conn.execute(
            "SELECT current_user, current_database(), current_setting('server_version_num')::int"
        ).fetchone()
        assert (user, database) == ("vpo_stats", "vpo_stats")
        assert version >= 120000  # CONTRACT section 7: PostgreSQL 12 or newer
        listen = conn.execute("SELECT current_setting('listen_addresses')").fetchone()[0]
        assert listen == "127.0.0.1"
        # an ordinary role, as a node would have: no superuser, yet it may create its tables
        superuser = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert superuser == (False, False, False)
        conn.execute("CREATE TABLE probe (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO probe VALUES (1)")
        assert conn.execute("SELECT count(*) FROM probe").fetchone()[0] == 1
        conn.rollback()


@pytest.mark.parametrize(
    ("password", "said"),
    [("wrong-password", "password authentication failed"), ("", "no password supplied")],
    ids=["wrong", "none"],
)
def test_tcp_needs_the_right_password(pg_server: PgServer, password: str, said: str) -> None:
    with pytest.raises(psycopg.OperationalError, match=said):
        psycopg.connect(pg_server.url(password=password), connect_timeout=10)
    # the superuser has no password: over TCP it cannot get in at all
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg_server.url(user="postgres", password="x"), connect_timeout=10)


def test_a_database_per_test_is_owned_by_the_role(pg_server: PgServer) -> None:
    url = pg_server.create_database("own_db_probe")
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "own_db_probe"
            conn.execute("CREATE TABLE t (x int)")
    finally:
        pg_server.admin("DROP DATABASE own_db_probe WITH (FORCE)")


def test_a_reader_of_an_empty_server_database_creates_nothing(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """A reader exits 66 naming the server (never the password) and makes no table; the first
    write makes the schema."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    url = pg_server.create_database("empty_reader_probe")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VPO_", "PG"))}
    env.update(HOME=str(cwd), VPO_STATS_DATABASE=url)

    def status() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [vpo_stats_script(), "status", "--format", "json"],
            cwd=cwd, env=env, capture_output=True, text=True,
        )  # fmt: skip

    done = status()
    assert done.returncode == 66, done.stderr
    server = f"PostgreSQL database empty_reader_probe on 127.0.0.1:{pg_server.port} as vpo_stats"
    assert server in done.stderr and "no stats tables yet" in done.stderr
    assert pg_server.password not in done.stdout + done.stderr
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert pg_server.admin(tables, database="empty_reader_probe") == [(0,)]
    assert os.listdir(cwd) == []
    imported = subprocess.run(
        [vpo_stats_script(), "import", "-"], input="", cwd=cwd, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    done = status()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["engine"] == "postgresql"


def _postmaster_pid(server: PgServer) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


def _gone(root: Path, port: int, pid: int) -> None:
    assert not root.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more
    assert not Path(f"/proc/{pid}").exists() or "postgres" not in Path(
        f"/proc/{pid}/cmdline"
    ).read_bytes().decode(errors="replace")


def _use_a_server(seen: dict[str, Any], fail: bool) -> None:
    with running_server("gone") as server:
        seen.update(root=server.root, port=server.port, pid=_postmaster_pid(server))
        assert server.running() and server.started_in < 30
        print(f"throwaway cluster started in {server.started_in:.2f} s")
        if fail:
            raise RuntimeError("a test failed while the server ran")


@pytest.mark.parametrize("ends", ["normally", "with-an-error"])
def test_the_cluster_is_gone_after(ends: str) -> None:
    seen: dict[str, Any] = {}
    with pytest.raises(RuntimeError) if ends == "with-an-error" else contextlib.nullcontext():
        _use_a_server(seen, fail=ends == "with-an-error")
    _gone(seen["root"], seen["port"], seen["pid"])


KILLED = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pgserver import running_server
with running_server("killed") as server:
    print(server.root, server.port, int((server.data / "postmaster.pid").read_text().split()[0]),
          flush=True)
    time.sleep(600)
"""


def test_the_cluster_is_gone_after_its_test_run_is_killed() -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    root, port, pid = run.stdout.readline().split()
    assert Path(root).exists()
    run.kill()  # SIGKILL: no finally, no atexit
    run.wait()
    deadline = time.monotonic() + 20
    while Path(root).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    _gone(Path(root), int(port), int(pid))


def test_stop_and_start_keep_the_data(pg_server: PgServer) -> None:
    """What the fault tests will do: the server away for a while, then back."""
    url = pg_server.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    pg_server.stop()
    try:
        assert not pg_server.running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=3)
    finally:
        pg_server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]
        conn.execute("DROP TABLE kept")
