"""Concurrency: several host processes, each with several threads, record into one database
while an import, a purge and readers run. Every run and action is kept, nobody sees "database
is locked", and the aggregates stay exact (the rollups equal a rebuild from the raw rows), on
SQLite and on a PostgreSQL server alike."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from conftest import engine_database
from history import rollup_rows
from hostproc import cli, host_env, start_host
from media import make_media

from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.store import open_store

HOSTS, THREADS, FILES, ACTIONS = 4, 2, 8, 3  # FILES per host, shared by its threads
SEEDED, IMPORTED = 400, 300


def _finished_run(policy: str, day: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "path": f"/library/{policy}/{uuid.uuid4().hex[:8]}.mkv",
        "policy": policy,
        "node": "archive",
        "status": "succeeded",
        "started_at": f"2024-03-{day:02}T10:00:00Z",
        "finished_at": f"2024-03-{day:02}T10:01:00Z",
        "duration_seconds": 60.5,
        "size_before_bytes": 1000,
        "size_after_bytes": 600,
        "tracks_before": {"video": 1, "audio": 3, "subtitle": 2, "attachment": 0},
        "tracks_after": {"video": 1, "audio": 1, "subtitle": 1, "attachment": 0},
        "actions": [{"type": "remove_track", "track_type": "audio", "success": True}],
        "phases": [],
        "source": "hooks",
    }


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_media(tmp_path_factory.mktemp("media") / "clip.mkv", duration=1.0))


def test_hosts_threads_import_purge_and_readers_at_once(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path, clip: str
) -> None:
    db = engine_database(request, engine, tmp_path / "stats.db")
    with open_store(db) as store:
        store.import_runs([_finished_run("stale", 1 + n % 28) for n in range(SEEDED)])
    export = tmp_path / "import.ndjson"
    export.write_text(
        "".join(json.dumps(_finished_run("imported", 1 + n % 28)) + "\n" for n in range(IMPORTED))
    )
    env = host_env(db)

    hosts = [
        start_host(
            {"files": [clip] * FILES, "actions": ACTIONS, "threads": THREADS, "prefix": f"h{n}"},
            env,
        )
        for n in range(HOSTS)
    ]
    code = "import sys; from vpo_stats_plugin.cli import main; sys.exit(main())"
    importer = subprocess.Popen(
        [sys.executable, "-c", code, "import", str(export)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    purger = subprocess.Popen(
        [sys.executable, "-c", code, "purge", "--policy", "stale", "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reads: list[subprocess.CompletedProcess[str]] = []

    def read_while_busy() -> None:
        while any(p.poll() is None for p in (*hosts, importer, purger)):
            reads.append(cli("summary", "--format", "json", env=env))

    reader = threading.Thread(target=read_while_busy)
    reader.start()
    outputs = [proc.communicate(timeout=60) for proc in hosts]
    imported, purged = importer.communicate(timeout=60), purger.communicate(timeout=60)
    reader.join(timeout=60)

    for proc, (out, err) in zip(hosts, outputs):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower(), err
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert not [e for e in events if e["event"] == "hook" and e["raised"]]
        done = events[-1]
        assert done["event"] == "done" and done["pending"] == 0, done
        assert set(done["errors"]) <= {"database-locked"}, done  # delayed at worst, never lost
    assert importer.returncode == 0 and purger.returncode == 0, (imported, purged)
    assert reads and all(r.returncode == 0 for r in reads), [r.stderr for r in reads]
    assert "Deleted 400 runs." in purged[0]

    store = open_store(db)
    conn = store.conn
    by_policy = dict(conn.execute("SELECT policy, COUNT(*) FROM runs GROUP BY policy"))
    live = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM runs WHERE policy = 'faults'"
    ).fetchone()
    actions = conn.execute(
        "SELECT COUNT(*) FROM actions JOIN runs ON runs.id = actions.run_id "
        "WHERE runs.policy = 'faults'"
    ).fetchone()[0]
    statuses = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))
    files = conn.execute("SELECT COUNT(DISTINCT path) FROM runs").fetchone()[0]
    assert by_policy == {"faults": HOSTS * FILES, "imported": IMPORTED}
    assert tuple(live) == (HOSTS * FILES, HOSTS * FILES)
    assert actions == HOSTS * FILES * ACTIONS
    assert statuses == {"succeeded": HOSTS * FILES + IMPORTED}

    with store:
        check = store.rebuild_rollups(check=True)
        summary = store.summary(Filters.parse())
    assert check["differing_rows"] == 0, check["differing_by_table"]
    assert summary["runs"] == HOSTS * FILES + IMPORTED and summary["files"] == files
    if engine == "sqlite":  # the same, row by row
        incremental = rollup_rows(Path(db))
        with open_store(db) as store:
            store.rebuild_rollups()
        assert rollup_rows(Path(db)) == incremental


def test_a_second_connection_in_one_process_keeps_the_wal(tmp_path: Path) -> None:
    """Regression: the store once read the database's first bytes with open()/close(), which
    drops every POSIX lock the process holds on the file. Another process closing its last
    connection then deleted the WAL, and this process's later writes went nowhere."""
    db = tmp_path / "stats.db"
    first = open_store(db)
    run = {"id": "r1", "path": "/a.mkv", "node": "n", "status": "running"}
    first.begin_run({**run, "started_at": "2025-01-01T00:00:00Z"})
    opened, finished = threading.Event(), threading.Event()

    def second_connection() -> None:  # as the recorder's keeper thread opens its own
        with open_store(db):
            opened.set()
            finished.wait(10)

    other = threading.Thread(target=second_connection)
    other.start()
    try:
        assert opened.wait(10)
        read = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())"
        outside = [sys.executable, "-c", read, str(db), "SELECT status FROM runs"]
        assert (
            subprocess.run(outside, capture_output=True, text=True).stdout.strip()
            == "[('running',)]"
        )
        first.finish_run("r1", {"status": "succeeded"}, [])
        seen = subprocess.run(outside, capture_output=True, text=True).stdout.strip()
        assert seen == "[('succeeded',)]"
    finally:
        finished.set()
        other.join()
        first.close()
