"""Upgrades: a database made by every released schema version upgrades in place with its history
intact; one from a newer version is refused (exit 65) and never touched, let alone downgraded.

Each released version keeps a dump in tests/fixtures (``schema_vN.sql``, with ``schema_vN.json``,
what its history reads as); tests/fixtures/make_schema_fixture.py makes the one for a release.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from history import rollup_rows
from hostproc import cli, host_env, run_host

from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.store.migrations import MIGRATIONS

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS = sorted(FIXTURES.glob("schema_v*.sql"), key=lambda p: int(re.findall(r"\d+", p.name)[0]))
READER, STALE = "reader-node", 1e10  # as make_schema_fixture.py reads its history


def _load(dump: Path, db: Path) -> dict[str, Any]:
    """Make ``db`` from a fixture dump; answers what its history must read as."""
    conn = sqlite3.connect(db)
    conn.executescript(dump.read_text(encoding="utf-8"))
    conn.close()
    return json.loads(dump.with_suffix(".json").read_text(encoding="utf-8"))


def _schema(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return sorted(
            conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchall()
        )
    finally:
        conn.close()


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def test_every_released_schema_has_a_fixture() -> None:
    versions = [int(re.findall(r"\d+", p.name)[0]) for p in DUMPS]
    assert versions[:1] == [1], "schema_v1.sql (the first release) must stay"
    # one per release; a release may bring several migrations (0.1.0 shipped m001-m003)
    assert versions == sorted(set(versions)), versions
    assert all(p.with_suffix(".json").exists() for p in DUMPS)
    assert versions[-1] <= len(MIGRATIONS)


@pytest.mark.parametrize("dump", DUMPS, ids=lambda p: p.stem)
def test_released_schema_upgrades_in_place(dump: Path, tmp_path: Path) -> None:
    db = tmp_path / "stats.db"
    want = _load(dump, db)
    conn = sqlite3.connect(db)
    applied_before = conn.execute("SELECT name, applied_at FROM _migrations").fetchall()
    conn.close()

    with open_store(db, node=READER, stale_after=STALE) as store:
        status = store.status()
        runs = list(store.iter_runs(Filters.parse()))
        incremental = rollup_rows(store.conn)
        store.rebuild_rollups()
        rebuilt = rollup_rows(store.conn)

    # every migration applied, the old ones as they were recorded
    assert status["migrations"] == [name for name, _ in MIGRATIONS]
    assert status["pending_migrations"] == []
    conn = sqlite3.connect(db)
    applied_after = conn.execute("SELECT name, applied_at FROM _migrations").fetchall()
    conn.close()
    assert applied_after[: len(applied_before)] == applied_before
    # history intact: every run, action, phase and recorded error, field by field
    assert [r["id"] for r in runs] == [r["id"] for r in want["runs"]]
    for got, expected in zip(runs, want["runs"]):
        assert {k: got[k] for k in expected} == expected
    assert status["runs"] == len(want["runs"])
    errors = {e["cause"]: e["count"] for e in status["recording_error_causes"]}
    assert errors == {e["cause"]: e["count"] for e in want["recording_errors"]}
    assert incremental == rebuilt  # the rollups came through as exact as the raw rows
    # the upgraded schema is the schema a new database gets
    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    assert _schema(db) == _schema(fresh)


@pytest.mark.parametrize("dump", DUMPS[-1:], ids=lambda p: p.stem)
def test_upgraded_database_records_and_reads(dump: Path, tmp_path: Path) -> None:
    """After the upgrade a real host records into it and the CLI reads it."""
    db = tmp_path / "stats.db"
    want = _load(dump, db)
    env = host_env(db, node=READER, stale_after="100y")
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"\0" * 1000)
    host = run_host({"files": [str(clip)], "actions": 2}, env)
    assert host.returncode == 0 and host.raised == [], host.stderr
    assert host.done["recording"] and host.done["errors"] == {}
    done = cli("--db", str(db), "summary", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"] == len(want["runs"]) + 1


def test_newer_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A database a newer plugin migrated (a migration this version does not know)."""
    db = tmp_path / "stats.db"
    _load(DUMPS[-1], db)
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO _migrations (name, applied_at) VALUES ('m999_from_the_future', '2031-01-01')"
    )
    conn.commit()
    conn.close()
    before = _digest(db)
    names_before = [r[0] for r in sqlite3.connect(db).execute("SELECT name FROM _migrations")]
    env = host_env(db)

    for args in (["status"], ["summary"], ["recent", "--format", "json"]):
        done = cli("--db", str(db), *args, env=env)
        assert done.returncode == 65, (args, done.stderr)
        message = " ".join(done.stderr.split())
        assert "written by a newer vpo-stats-plugin" in message
        assert "m999_from_the_future" in message and "pip install -U vpo-stats-plugin" in message
        assert "Traceback" not in done.stderr

    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"\0" * 1000)
    host = run_host({"files": [str(clip)], "actions": 1}, env)
    assert host.returncode == 0 and host.raised == []
    assert host.done["errors"] == {"database-unusable": 3}
    assert _digest(db) == before  # not migrated, not even switched to WAL
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    conn.close()
    assert names == names_before and names[-1] == "m999_from_the_future"
