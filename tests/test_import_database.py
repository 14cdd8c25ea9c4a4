"""`import SOURCE` with another stats database: every run moved or merged, the source untouched."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_database
from history import copy_db, import_runs, invoke, json_of, make_history, read_raw
from test_cli_exchange import all_answers, export_to

FIXTURES = Path(__file__).parent / "fixtures"
VIEWS = [
    ["nodes"],
    ["nodes", "--sort", "saved", "--since", "2026-06-01"],
    ["policies", "--sort", "name"],
]


def digest(db: Path) -> str:
    """The database file and its WAL, byte for byte."""
    parts = [db, Path(f"{db}-wal")]
    return hashlib.sha256(b"".join(p.read_bytes() for p in parts if p.exists())).hexdigest()


def views(runner: Any, db: Path) -> list[Any]:
    return [json_of(invoke(runner, db, *v, "--format", "json")) for v in VIEWS]


@pytest.fixture
def source(recorded: Path, tmp_path: Path) -> tuple[Path, int]:
    """Runs recorded from real media through the reference host, plus fourteen months imported."""
    db = copy_db(recorded, tmp_path / "node-1.db")
    import_runs(db, make_history(datetime.now(timezone.utc), count=150, seed=31))
    return db, len(read_raw(db))


def test_a_stats_database_moves_with_every_run_action_and_phase(
    source: tuple[Path, int], runner: Any, tmp_path: Path, engine: str, request: Any
) -> None:
    db, count = source
    untouched = digest(db)
    fresh = engine_database(request, engine, tmp_path / "fresh.db")
    result = invoke(runner, fresh, "import", str(db))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{count} runs read from the stats database {db}: {count} imported, 0 already present, "
        "0 skipped.\n"
    )
    assert digest(db) == untouched, "the source was read, never written"
    assert all_answers(runner, fresh) == all_answers(runner, db)
    assert views(runner, fresh) == views(runner, db)
    # the exports, every field of every run with its actions and phases, are identical
    ours = export_to(runner, fresh, tmp_path / "fresh.ndjson").read_bytes()
    assert ours == export_to(runner, db, tmp_path / "source.ndjson").read_bytes()

    again = invoke(runner, fresh, "import", str(db))
    assert again.exit_code == 0
    assert f"0 imported, {count} already present, 0 skipped" in again.stdout
    assert all_answers(runner, fresh) == all_answers(runner, db)


def test_histories_of_several_nodes_merge_into_one(
    source: tuple[Path, int], runner: Any, tmp_path: Path, engine: str, request: Any
) -> None:
    node_1, _ = source
    now = datetime.now(timezone.utc)
    node_2 = tmp_path / "node-2.db"
    shared = make_history(now, count=20, seed=41)  # both already hold these (an earlier merge)
    import_runs(node_2, shared + make_history(now, count=80, seed=42))
    import_runs(node_1, shared)
    merged = engine_database(request, engine, tmp_path / "merged.db")
    for db in (node_1, node_2):
        assert invoke(runner, merged, "import", str(db)).exit_code == 0
    union = {r["id"] for r in read_raw(node_1) + read_raw(node_2)}
    exported = export_to(runner, merged, tmp_path / "merged.ndjson").read_text().splitlines()
    assert {json.loads(line)["id"] for line in exported} == union
    # the same history imported as exports gives the same answers
    by_export = tmp_path / "by-export.db"
    for db in (node_1, node_2):
        dump = export_to(runner, db, tmp_path / f"{db.stem}.ndjson")
        assert invoke(runner, by_export, "import", str(dump)).exit_code == 0
    assert all_answers(runner, merged) == all_answers(runner, by_export)
    assert views(runner, merged) == views(runner, by_export)
    per_node = json_of(invoke(runner, merged, "nodes", "--format", "json"))["nodes"]
    assert sum(n["runs"] for n in per_node) == len(union)


def test_an_older_stats_database_is_read_through_an_upgraded_copy(
    runner: Any, tmp_path: Path
) -> None:
    old = tmp_path / "v1.db"
    with sqlite3.connect(old) as conn:
        conn.executescript((FIXTURES / "schema_v1.sql").read_text(encoding="utf-8"))
    conn.close()
    untouched = digest(old)
    target = tmp_path / "target.db"
    result = invoke(runner, target, "import", str(old))
    assert result.exit_code == 0, result.output
    # every run, the one whose host clock went back (finished before it started) included
    assert result.stdout.endswith(" imported, 0 already present, 0 skipped.\n"), result.stdout
    assert digest(old) == untouched, "the source stays at its old schema, unchanged"
    upgraded = copy_db(old, tmp_path / "upgraded.db")
    invoke(runner, upgraded, "rebuild")  # any writing command upgrades it
    assert {r["id"] for r in read_raw(target)} == {r["id"] for r in read_raw(upgraded)}
    for question in (["summary"], ["trend", "--by", "month"], ["recent", "--limit", "100"]):
        answers = [
            json_of(invoke(runner, db, *question, "--format", "json")) for db in (target, upgraded)
        ]
        assert answers[0] == answers[1], question
    assert views(runner, target) == views(runner, upgraded)
    ours = export_to(runner, target, tmp_path / "target.ndjson").read_bytes()
    assert ours == export_to(runner, upgraded, tmp_path / "upgraded.ndjson").read_bytes()


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT)")
    conn.close()


def _corrupt(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_foreign, "another application's SQLite database, not a stats store (VPO's own"),
        (_corrupt, "it is not a SQLite database"),
    ],
    ids=["another application's", "corrupt"],
)
def test_a_database_that_is_not_a_stats_store_is_refused(
    runner: Any, tmp_path: Path, make: Any, words: str
) -> None:
    bad, target = tmp_path / "library.db", tmp_path / "target.db"
    make(bad)
    untouched = digest(bad)
    result = invoke(runner, target, "import", str(bad))
    assert result.exit_code == 65, result.output
    assert f"cannot import {bad}: " in result.stderr and words in result.stderr
    assert "It was left as it is." in result.stderr and "--db" not in result.stderr
    assert digest(bad) == untouched and not target.exists()


def test_importing_a_database_into_itself_is_refused(source: tuple[Path, int], runner: Any) -> None:
    db, count = source
    result = invoke(runner, db, "import", str(db))
    assert result.exit_code == 2
    assert "is the stats database itself" in result.stderr and "SOURCE" in result.stderr
    assert len(read_raw(db)) == count


def test_a_sqlite_file_with_no_stats_has_nothing_to_import(runner: Any, tmp_path: Path) -> None:
    empty, target = tmp_path / "empty.db", tmp_path / "target.db"
    with sqlite3.connect(empty) as conn:
        conn.execute("PRAGMA user_version = 7")  # a SQLite file (a header page), no table
    conn.close()
    result = invoke(runner, target, "import", str(empty))
    assert result.exit_code == 65, result.output
    assert result.stderr.startswith(f"Error: nothing to import: {empty} is an empty SQLite")
    assert not target.exists()


def test_a_damaged_run_in_the_source_is_skipped_and_named(
    source: tuple[Path, int], runner: Any, tmp_path: Path, engine: str, request: Any
) -> None:
    db, count = source
    edited = copy_db(db, tmp_path / "edited.db")
    with sqlite3.connect(edited) as conn:  # a hand edit: the store itself never writes these
        bad = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY rowid LIMIT 2")]
        conn.execute("UPDATE runs SET status = 'done' WHERE id = ?", (bad[0],))
        conn.execute("UPDATE runs SET node = '' WHERE id = ?", (bad[1],))
    conn.close()
    target = engine_database(request, engine, tmp_path / "target.db")
    result = invoke(runner, target, "import", str(edited))
    assert result.exit_code == 1, result.output
    assert f"{count - 2} imported, 0 already present, 2 skipped" in result.stdout
    assert f"run {bad[0]}: status 'done' is not one of" in result.stderr
    assert f"run {bad[1]}: missing or non-text field 'node'" in result.stderr
    totals = json_of(invoke(runner, target, "summary", "--format", "json"))
    assert totals["runs"] == count - 2
    # the good runs went in whole: run again, the same two are skipped and nothing else changes
    again = invoke(runner, target, "import", str(edited))
    assert f"0 imported, {count - 2} already present, 2 skipped" in again.stdout


def test_a_move_into_postgresql_that_fails_leaves_the_database_empty_and_whole(
    source: tuple[Path, int], runner: Any, tmp_path: Path, request: Any
) -> None:
    """The move into an empty server database is one transaction (its indexes set aside and
    built again inside it): a run the server refuses undoes all of it, indexes included."""
    db, count = source
    edited = copy_db(db, tmp_path / "edited.db")
    with sqlite3.connect(edited) as conn:  # a text PostgreSQL cannot store (SQLite can)
        last = conn.execute("SELECT id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        conn.execute("UPDATE runs SET error = 'a' || char(0) || 'b' WHERE id = ?", (last,))
    conn.close()
    target = engine_database(request, "postgresql", tmp_path / "unused.db")

    def indexes() -> list[str]:
        from vpo_stats_plugin.store import open_store

        with open_store(target) as store:
            rows = store.conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "ORDER BY indexname"
            ).fetchall()
        return [row[0] for row in rows]

    made = indexes()  # the schema, made by a first open
    assert "runs_path_filters" in made
    failed = invoke(runner, target, "import", str(edited))
    assert failed.exit_code != 0, failed.output
    assert "Traceback" not in failed.output
    assert json_of(invoke(runner, target, "summary", "--format", "json"))["runs"] == 0
    assert indexes() == made
    moved = invoke(runner, target, "import", str(db))
    assert moved.exit_code == 0, moved.output
    assert f"{count} imported" in moved.stdout
    assert all_answers(runner, target) == all_answers(runner, db)
    assert (
        json_of(invoke(runner, target, "rebuild", "--check", "--format", "json"))["differing_rows"]
        == 0
    )
