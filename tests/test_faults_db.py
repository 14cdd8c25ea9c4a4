"""Fault: the database file is corrupt or not ours. A real host records nothing, never fails,
and the file is left byte-for-byte as it was; the CLI exits 65 saying what to do."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hostproc import cli, host_env, run_host
from media import make_media

from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.store import open_store

ACTIONS = 2
FILES = 2
WRITES = FILES * (ACTIONS + 2)  # before-file, each action, after-file


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two tiny real media files (1 s, 64x48)."""
    folder = tmp_path_factory.mktemp("media")
    return [str(make_media(folder / f"clip{n}.mkv", duration=1.0)) for n in range(FILES)]


def _ours_with_history(db: Path) -> None:
    """A real stats database with enough rows to span many pages, cleanly closed."""
    with open_store(db) as store:
        for n in range(300):
            store.begin_run(
                {
                    "id": f"run-{n:04}",
                    "path": f"/library/film {n}.mkv",
                    "node": "nas",
                    "status": "running",
                    "started_at": "2025-01-01T00:00:00Z",
                    "policy": "english",
                }
            )
            store.finish_run(f"run-{n:04}", {"status": "succeeded", "size_after_bytes": n}, [])


def _truncated(at: Callable[[int], int]) -> Callable[[Path], None]:
    def make(db: Path) -> None:
        _ours_with_history(db)
        data = db.read_bytes()
        db.write_bytes(data[: at(len(data))])

    return make


def _foreign(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('Ada', '555-0100')")
    conn.commit()
    conn.close()


def _foreign_wal_pending(db: Path) -> None:
    """Another application's WAL database whose process died with frames still in the WAL:
    merely opening it read-write and closing it would checkpoint them into the file."""
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=WAL')\n"
        "c.execute('CREATE TABLE notes (body TEXT)'); c.commit()\n"
        "c.execute('PRAGMA wal_autocheckpoint=0')\n"
        "c.execute(\"INSERT INTO notes VALUES ('unsaved')\"); c.commit(); os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True)
    assert Path(f"{db}-wal").stat().st_size > 0


def _foreign_application_id(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA application_id = 1234")
    conn.commit()
    conn.close()


rng = random.Random(9)
CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "random-bytes": lambda db: db.write_bytes(rng.randbytes(64 * 1024)),
    "sqlite-header-then-garbage": lambda db: db.write_bytes(
        b"SQLite format 3\x00" + rng.randbytes(8192)
    ),
    "truncated-half": _truncated(lambda size: size // 2),
    "truncated-after-first-page": _truncated(lambda size: 4096),
    "truncated-mid-page": _truncated(lambda size: 4096 * 5 + 100),
    "foreign-sqlite": _foreign,
    "foreign-sqlite-wal-pending": _foreign_wal_pending,
    "foreign-application-id": _foreign_application_id,
}


EMPTY = hashlib.sha256(b"").hexdigest()


def _digests(db: Path) -> dict[str, str]:
    """The database file and its WAL, byte for byte (the -shm index is SQLite's scratch, and
    an empty WAL, which even a read-only connection may create, holds nothing)."""
    return {
        p.name: digest
        for p in (db, Path(f"{db}-wal"))
        if p.exists() and (digest := hashlib.sha256(p.read_bytes()).hexdigest()) != EMPTY
    }


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_database_records_nothing_and_changes_nothing(
    corruption: str, tmp_path: Path, media: list[str]
) -> None:
    db = tmp_path / "stats.db"
    CORRUPTIONS[corruption](db)
    before = _digests(db)
    env = host_env(db)

    host = run_host({"files": media, "actions": ACTIONS}, env)

    assert host.returncode == 0, host.stderr
    assert host.raised == []
    assert len(host.of("file")) == FILES
    assert max(host.hook_ms[1:]) < 250  # once refused, the database is not tried again
    assert host.done["errors"].get("database-unusable") == WRITES
    assert host.done["pending"] == 0
    assert _digests(db) == before

    status = cli("--db", str(db), "status", env=env)
    assert status.returncode == 65, status.stderr
    assert "Traceback" not in status.stderr
    message = " ".join(status.stderr.split())
    assert f"cannot use {db}" in message or "not a stats store" in message
    assert "Point --db" in message and "restore a backup" in message
    # the failures the hooks counted are shown, though the database cannot hold them
    assert f"counted {WRITES} recording failure(s)" in message
    assert _digests(db) == before


def test_every_reading_command_refuses_a_corrupt_database(tmp_path: Path) -> None:
    db = tmp_path / "stats.db"
    CORRUPTIONS["truncated-half"](db)
    before = _digests(db)
    env = host_env(db)
    for args in (["summary"], ["recent", "--format", "json"], ["policies"], ["trend"]):
        done = cli("--db", str(db), *args, env=env)
        assert done.returncode == 65, (args, done.stderr)
        assert "malformed" in done.stderr and "Traceback" not in done.stderr
    assert _digests(db) == before


def test_a_directory_in_place_of_the_database(tmp_path: Path, media: list[str]) -> None:
    db = tmp_path / "stats.db"
    db.mkdir()
    host = run_host({"files": media, "actions": ACTIONS}, host_env(db))
    assert host.returncode == 0 and host.raised == []
    assert host.done["errors"].get("database-unusable") == WRITES
    assert os.listdir(db) == []


def test_a_new_database_opened_by_many_at_once_is_ours_for_all(tmp_path: Path) -> None:
    """Readers and writers racing to open a database that does not exist yet: one creates it,
    none takes the half-made file for another application's, and none is told it is locked
    (switching a new file to WAL answers "locked" at once while others open it)."""
    threads, rounds = 6, 25
    failures: list[str] = []

    def open_and_read(db: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            with open_store(db) as store:
                store.summary(Filters())
        except Exception as err:  # collected: the assertion below names them
            failures.append(f"{db.name}: {err}")

    for n in range(rounds):
        db = tmp_path / f"new-{n}.db"
        start = threading.Barrier(threads)
        workers = [threading.Thread(target=open_and_read, args=(db, start)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert failures == []
    with open_store(tmp_path / "new-0.db") as store:
        assert store.summary(Filters())["runs"] == 0
