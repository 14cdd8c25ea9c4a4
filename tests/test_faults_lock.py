"""Fault: another process holds the database locked for seconds. A real host's hooks return
promptly, and every run is written once the lock is released, before the host process ends."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostproc import cli, hold_lock, host_env, run_host, start_host, wait_for
from media import make_media

from vpo_stats_plugin import spool
from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.store.migrations import MIGRATIONS
from vpo_stats_plugin.writequeue import HOOK_BUSY_MS

FILES, ACTIONS = 4, 3
WRITES = FILES * (ACTIONS + 2)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("media")
    clip = make_media(folder / "clip.mkv", duration=1.0)
    return [str(clip)] * FILES


def _counts(db: Path) -> tuple[dict[str, int], int]:
    conn = sqlite3.connect(db)
    try:
        runs = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        actions = conn.execute("SELECT COUNT(*) FROM actions").fetchone()[0]
    finally:
        conn.close()
    return runs, actions


def _status(db: Path, env: dict[str, str]) -> dict:
    done = cli("--db", str(db), "status", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _causes(status: dict) -> dict[str, int]:
    return {e["cause"]: e["count"] for e in status["recording_error_causes"]}


def _assert_prompt(hook_ms: list[float]) -> None:
    """The first hook pays for imports and meets the lock (it waits HOOK_BUSY_MS at most for
    it); every later hook finds the writes queued and returns at once. (Here they take well
    under a millisecond; the bounds leave room for a busy CI machine, not for lock waits.)"""
    assert hook_ms[0] < 3000 + HOOK_BUSY_MS
    assert max(hook_ms[1:]) < HOOK_BUSY_MS, hook_ms
    assert sum(hook_ms[1:]) < 1000, hook_ms


@pytest.mark.parametrize(
    "exclusive, seconds, patience, counted",
    [(False, 1.5, None, WRITES), (True, 1.5, None, 0), (True, 5.0, 0.3, WRITES)],
    ids=["write-lock", "exclusive-lock", "exclusive-lock-past-the-open-patience"],
)
def test_locked_database_delays_nothing_and_loses_nothing(
    exclusive: bool,
    seconds: float,
    patience: float | None,
    counted: int,
    tmp_path: Path,
    media: list[str],
) -> None:
    """A write lock held by another process delays writes: counted. An exclusive lock meets
    the host as it opens the database, like a checkpoint as another process closes it: normal
    work, waited for quietly unless it lasts OPEN_PATIENCE_S (here once shortened to 0.3 s)."""
    db = tmp_path / "stats.db"
    open_store(db).close()
    env = host_env(db)
    locker = hold_lock(db, seconds, exclusive=exclusive)
    started = time.monotonic()

    spec = {"files": media, "actions": ACTIONS}
    host = run_host(spec if patience is None else {**spec, "open_patience": patience}, env)

    assert locker.wait() == 0
    released = time.monotonic() - started
    assert host.returncode == 0 and host.raised == [], host.stderr
    _assert_prompt(host.hook_ms)
    assert host.done["pending"] == WRITES  # all queued when the host was done ...
    assert host.seconds >= released - 0.5  # ... and its exit waited for the lock to go
    assert _counts(db) == ({"succeeded": FILES}, FILES * ACTIONS)
    causes = _causes(_status(db, env))
    assert causes.get("database-locked", 0) == counted
    assert "writes-lost" not in causes
    assert ("locked" in host.stderr) == bool(counted), host.stderr


def test_runs_are_written_as_soon_as_the_lock_goes(tmp_path: Path, media: list[str]) -> None:
    """A long-running host does not wait for its exit: the keeper writes the queue."""
    db = tmp_path / "stats.db"
    open_store(db).close()
    # held until the host lingers, however long its files take on a loaded machine (a fixed
    # second ran out before the host got there: the writes were in, and the test failed)
    locker = hold_lock(db, 60.0)
    host = start_host({"files": media, "actions": ACTIONS, "linger": 30}, host_env(db))
    try:
        wait_for(host, "lingering")
        assert _counts(db) == ({}, 0)
        locker.terminate()  # the lock goes with its process
        locker.wait()
        deadline = time.monotonic() + 3
        while _counts(db)[0] != {"succeeded": FILES} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host.poll() is None  # still running
        assert _counts(db) == ({"succeeded": FILES}, FILES * ACTIONS)
    finally:
        host.kill()
        host.wait()


def test_locked_before_the_first_migration(tmp_path: Path, media: list[str]) -> None:
    """An empty database file whose creator holds the lock: migrations wait, like writes."""
    db = tmp_path / "stats.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    locker = hold_lock(db, 1.0)
    host = run_host({"files": media, "actions": ACTIONS}, host_env(db))
    assert locker.wait() == 0
    assert host.returncode == 0 and host.raised == [], host.stderr
    _assert_prompt(host.hook_ms)
    assert _counts(db) == ({"succeeded": FILES}, FILES * ACTIONS)
    conn = sqlite3.connect(db)
    applied = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    conn.close()
    assert applied == [name for name, _ in MIGRATIONS]


def test_a_lock_held_past_the_exit_patience_is_counted(tmp_path: Path, media: list[str]) -> None:
    """The exit flush waits EXIT_PATIENCE_S (60 s; 1 s here), then keeps the writes on disk
    and says so; the next plugin process (here a `status`) saves them."""
    db = tmp_path / "stats.db"
    open_store(db).close()
    env = host_env(db)
    locker = hold_lock(db, 30)
    try:
        host = run_host({"files": media, "actions": ACTIONS, "exit_patience": 1}, env)
        assert host.returncode == 0 and host.raised == []
        assert 1 <= host.seconds < 10
        assert "kept on this machine's disk, the next plugin process saves them" in host.stderr
    finally:
        locker.kill()
        locker.wait()
    assert spool.waiting(db)
    status = _status(db, env)  # opening the database saved the kept writes first
    causes = _causes(status)
    assert causes["writes-kept"] == WRITES and causes["database-locked"] == WRITES
    assert status["runs"] == FILES and status["runs_by_status"] == {"succeeded": FILES}
    assert _counts(db) == ({"succeeded": FILES}, FILES * ACTIONS)
    assert not spool.waiting(db)
    again = _status(db, env)  # saved once: nothing twice
    assert again["runs"] == FILES and _counts(db) == ({"succeeded": FILES}, FILES * ACTIONS)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_workers_flush_before_they_end(
    method: str, tmp_path: Path, media: list[str]
) -> None:
    """Pool workers end with os._exit (no atexit): their queued writes are saved all the same."""
    db = tmp_path / "stats.db"
    open_store(db).close()
    locker = hold_lock(db, 1.0)
    host = run_host({"files": media, "actions": ACTIONS, "pool": method}, host_env(db))
    assert locker.wait() == 0
    assert host.returncode == 0 and host.raised == [], host.stderr
    assert 0 not in host.of("pool-done")[0]["workers"]  # every worker recorded
    assert _counts(db) == ({"succeeded": FILES}, FILES * ACTIONS)


_MIGRATOR = """
import sys
from vpo_stats_plugin.store import migrations, open_store

name, first = migrations.MIGRATIONS[0]

def held(conn):  # the first migration, holding its write lock until told to go on
    first(conn)
    print("migrating", flush=True)
    sys.stdin.readline()

migrations.MIGRATIONS[0] = (name, held)
open_store(sys.argv[1]).close()
"""


def test_hosts_waiting_for_another_process_s_first_migration_say_nothing(
    tmp_path: Path, media: list[str]
) -> None:
    """Hosts starting on a new database while another process is still in its first migration
    (slow on a busy machine) wait for it as normal work: no warning on any host's stderr,
    nothing counted, every run saved. Each host meets the migration's lock before it ends."""
    db = tmp_path / "new" / "stats.db"
    env = host_env(db)
    migrator = subprocess.Popen(
        [sys.executable, "-c", _MIGRATOR, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert migrator.stdout is not None and migrator.stdin is not None
    assert migrator.stdout.readline().strip() == "migrating"
    hosts = [
        start_host({"files": media, "actions": ACTIONS, "prefix": f"h{n}"}, env) for n in range(4)
    ]
    try:
        for host in hosts:  # each host's first hook met the lock (and left its write queued)
            wait_for(host, "hook", timeout=60)
    finally:
        migrator.stdin.write("go on\n")
        migrator.stdin.close()
    assert migrator.wait(timeout=60) == 0
    for host in hosts:
        assert host.stdout is not None and host.stderr is not None
        out, err = host.stdout.read(), host.stderr.read()  # the rest, after wait_for's reads
        assert host.wait(timeout=120) == 0, err
        assert "locked" not in err.lower() and "vpo-stats" not in err, err
        done = json.loads(out.splitlines()[-1])
        assert done["event"] == "done" and done["errors"] == {}, done  # nothing counted
    assert _counts(db) == ({"succeeded": 4 * FILES}, 4 * FILES * ACTIONS)
    assert _status(db, env)["recording_errors"] == 0
