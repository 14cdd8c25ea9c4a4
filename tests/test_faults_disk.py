"""Faults: an impossible or unwritable database path, a full disk. A real host's hooks raise
nothing and return promptly; the failures are counted and `vpo-stats status` shows them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from history import import_runs, make_history, vpo_stats_script
from hostproc import cli, host_env, run_host
from media import make_media

from vpo_stats_plugin import spool
from vpo_stats_plugin.filters import utcnow
from vpo_stats_plugin.store import open_store

FILES, ACTIONS = 3, 2
WRITES = FILES * (ACTIONS + 2)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("media")
    return [str(make_media(folder / "clip.mkv", duration=1.0))] * FILES


def _causes(status: dict) -> dict[str, int]:
    return {e["cause"]: e["count"] for e in status["recording_error_causes"]}


@pytest.mark.parametrize(
    "where",
    [
        "/dev/null/stats.db",  # a file where a directory should be
        "/proc/self/stats.db",  # a directory nobody can create files in, root included
        "/proc/self/no/such/dir/stats.db",
    ],
)
def test_impossible_path(where: str, media: list[str]) -> None:
    env = host_env(Path(where))
    host = run_host({"files": media, "actions": ACTIONS}, env)

    assert host.returncode == 0 and host.raised == [], host.stderr
    assert len(host.of("file")) == FILES
    assert max(host.hook_ms[1:]) < 250  # tried once, then writes are queued without waiting
    assert host.seconds < 10  # the exit tries once more, and does not wait for a disk
    assert host.done["errors"] == {"database-unwritable": WRITES}

    status = cli("status", env=env)  # the database path comes from VPO_STATS_DATABASE
    assert status.returncode == 65 and "Traceback" not in status.stderr
    message = " ".join(status.stderr.split())
    assert f"cannot write {where}" in message
    assert "point --db (or VPO_STATS_DATABASE) at a writable place" in message
    assert f"counted {2 * WRITES} recording failure(s)" in message  # unwritable, then kept
    assert "writes-kept" in message and "database-unwritable" in message
    # kept on this machine's disk until that database can be made
    assert spool.waiting(Path(where))


def test_unwritable_path_and_no_home_either(tmp_path: Path, media: list[str]) -> None:
    """Not even the fallback tally can be written: still nothing reaches the host."""
    env = host_env(Path("/proc/self/stats.db"))
    env["HOME"] = "/proc/self/nohome"
    host = run_host({"files": media, "actions": ACTIONS}, env)
    assert host.returncode == 0 and host.raised == [], host.stderr
    assert len(host.of("file")) == FILES


@pytest.fixture
def full_disk_db(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    """A database with history, held open by a reader (as the dashboard would)."""
    db = tmp_path / "stats.db"
    with open_store(db) as store:
        store.begin_run(
            {
                "id": "run-before",
                "path": "/library/a.mkv",
                "node": "nas",
                "status": "running",
                "started_at": "2025-01-01T00:00:00Z",
            }
        )
        store.finish_run("run-before", {"status": "succeeded"}, [])
    reader = sqlite3.connect(db)
    reader.execute("SELECT COUNT(*) FROM runs").fetchone()
    return db, reader


def test_disk_full(full_disk_db: tuple[Path, sqlite3.Connection], media: list[str]) -> None:
    """Every file the host writes is limited to 8 KiB (RLIMIT_FSIZE): SQLite's writes fail as
    on a full disk, the host goes on, and the failures are shown by status."""
    db, reader = full_disk_db
    env = host_env(db)
    host = run_host({"files": media, "actions": ACTIONS, "file_size_limit": 8192}, env)

    assert host.returncode == 0 and host.raised == [], host.stderr
    assert max(host.hook_ms[1:]) < 250
    assert host.seconds < 10
    assert host.done["errors"] == {"database-unwritable": WRITES}
    done = cli("--db", str(db), "status", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    # the writes the full disk refused were kept, and saved by this next process
    assert status["runs"] == 1 + FILES and status["runs_by_status"] == {"succeeded": 1 + FILES}
    assert _causes(status) == {"database-unwritable": WRITES, "writes-kept": WRITES}
    assert status["recording_errors"] == 2 * WRITES
    assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reader.close()


def test_disk_full_then_freed(
    full_disk_db: tuple[Path, sqlite3.Connection], media: list[str]
) -> None:
    """The disk has room again before the host ends: every run is saved after all."""
    db, reader = full_disk_db
    env = host_env(db)
    spec = {"files": media, "actions": ACTIONS, "file_size_limit": 8192}
    host = run_host({**spec, "file_size_limit_for": 0.5, "linger": 1.0}, env)

    assert host.returncode == 0 and host.raised == [], host.stderr
    assert host.of("disk-freed")
    assert host.done["errors"] == {"database-unwritable": WRITES}
    status = json.loads(cli("--db", str(db), "status", "--format", "json", env=env).stdout)
    assert status["runs"] == 1 + FILES
    assert status["runs_by_status"] == {"succeeded": 1 + FILES}
    assert _causes(status) == {"database-unwritable": WRITES}
    assert reader.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == FILES * ACTIONS
    reader.close()


def test_a_database_path_that_is_not_utf8(tmp_path: Path, media: list[str]) -> None:
    """A home directory or database name with bytes that are not UTF-8 is a path like any."""
    db = Path(os.fsdecode(bytes(tmp_path) + b"/stats-caf\xe9.db"))
    host = run_host({"files": media, "actions": ACTIONS}, host_env(db))
    assert host.returncode == 0 and host.raised == [] and host.done["errors"] == {}
    assert os.path.exists(bytes(tmp_path) + b"/stats-caf\xe9.db")
    status = cli("--db", str(db), "status", "--format", "json", env=host_env(db))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["runs"] == FILES


def _limited(limit: int) -> None:
    """In the child: files may grow to ``limit`` bytes, as on a nearly full disk (EFBIG)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("command", ["backup", "export"])
def test_output_file_on_a_full_disk(command: str, tmp_path: Path) -> None:
    """A backup or an export that runs out of room: a clean error naming the file, the old file
    kept as it was, and the temporary file gone."""
    db = tmp_path / "stats.db"
    import_runs(db, make_history(utcnow(), count=200, seed=4))
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "kept"
    dest.write_bytes(b"the old copy")
    args = ["backup", "--force", str(dest)] if command == "backup" else ["export", "-o", str(dest)]
    done = subprocess.run(
        [vpo_stats_script(), "--db", str(db), *args],
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limited(64 * 1024),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"cannot write {dest}" in done.stderr and "Traceback" not in done.stderr
    assert "File too large" in done.stderr or "disk" in done.stderr, done.stderr
    assert dest.read_bytes() == b"the old copy"
    assert sorted(p.name for p in out.iterdir()) == ["kept"]
