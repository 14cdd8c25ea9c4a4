"""The web app's stores (web/readers.py): on a server, sessions kept between requests, given
up when the server went away, and dead runs still reaped; a SQLite file opened per request."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_database
from pgserver import PgServer

from vpo_stats_plugin.filters import Filters, iso, utcnow
from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.web import readers as readers_module
from vpo_stats_plugin.web.readers import IDLE_MAX, Readers

DEAD_PID = 2**22 + 12345  # above any pid this machine hands out


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    return engine_database(request, "postgresql", Path("unused"))


def _backend(store: Any) -> int:
    return store.conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def _begin(database: str | Path, node: str, **run: Any) -> None:
    with open_store(database, node=node) as store:
        store.begin_run(
            {
                "id": str(uuid.uuid4()),
                "path": f"/library/{uuid.uuid4().hex}.mkv",
                "policy": "english",
                "node": node,
                "status": "running",
                "started_at": iso(utcnow()),  # active now: only a dead process makes it stale
                "pid": DEAD_PID,
                **run,
            }
        )


def test_requests_one_after_another_share_one_server_session(url: str) -> None:
    _begin(url, "nas-1")  # the schema exists: a session kept is a real store
    readers = Readers(url, {})
    sessions = {readers.ask(_backend) for _ in range(20)}
    assert len(sessions) == 1
    readers.close()


def test_requests_at_once_keep_at_most_a_few_sessions(url: str, pg_server: PgServer) -> None:
    _begin(url, "nas-1")
    readers = Readers(url, {})
    start = threading.Barrier(IDLE_MAX * 2)
    seen: list[int] = []

    def request() -> None:
        start.wait()
        seen.append(readers.ask(lambda store: (_backend(store), store.summary(Filters()))[0]))

    threads = [threading.Thread(target=request) for _ in range(IDLE_MAX * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(seen) == IDLE_MAX * 2
    kept = {readers.ask(_backend) for _ in range(IDLE_MAX * 3)}
    assert 1 <= len(kept) <= IDLE_MAX and kept <= set(seen)
    readers.close()
    assert _sessions_left(pg_server, kept, within=10.0) == 0  # closed with the app


def _sessions_left(pg_server: PgServer, pids: set[int], within: float) -> int:
    """How many of ``pids`` are still server sessions once they had ``within`` seconds to end.

    A backend leaves pg_stat_activity a moment after its client hung up, not at once."""
    deadline = time.monotonic() + within
    while True:
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
        left = pg_server.admin(query, list(pids))[0][0]
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_a_kept_session_the_server_ended_is_replaced_unseen(url: str, pg_server: PgServer) -> None:
    _begin(url, "nas-1")
    readers = Readers(url, {})
    before = readers.ask(_backend)
    pg_server.admin("SELECT pg_terminate_backend(%s)", before)
    runs = readers.ask(lambda store: store.summary(Filters())["runs"])
    assert runs == 1
    assert readers.ask(_backend) != before
    readers.close()


def test_a_kept_session_still_reaps_dead_runs(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers_module, "REAP_EVERY_S", 0.0)
    node = "web-node"
    readers = Readers(url, {"node": node})
    _begin(url, "nas-1", pid=os.getpid())  # alive: not reaped
    assert readers.ask(lambda store: store.summary(Filters())["interrupted"]) == 0
    first = readers.ask(_backend)
    _begin(url, node)  # this node's run, its process gone
    assert readers.ask(lambda store: store.summary(Filters())["interrupted"]) == 1
    assert readers.ask(_backend) == first  # on the same kept session
    readers.close()


def test_a_sqlite_file_replaced_meanwhile_is_read_anew(tmp_path: Path) -> None:
    db, other = tmp_path / "stats.db", tmp_path / "restored.db"
    _begin(db, "nas-1", pid=os.getpid())
    shutil.copy(db, other)
    _begin(other, "nas-1", pid=os.getpid())
    readers = Readers(db, {})
    assert readers.ask(lambda store: store.summary(Filters())["runs"]) == 1
    os.replace(other, db)  # a backup restored over it
    assert readers.ask(lambda store: store.summary(Filters())["runs"]) == 2
    readers.close()
