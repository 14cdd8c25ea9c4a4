"""status, path, backup and purge: on real SQLite files, purge also through a real terminal."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_database
from history import (
    NODES,
    POLICIES,
    Expected,
    day_start,
    import_runs,
    invoke,
    json_of,
    make_history,
    read_raw,
    vpo_stats_script,
)
from hostproc import host_env, run_host

from vpo_stats_plugin import hooks
from vpo_stats_plugin.purging import Token, set_digest
from vpo_stats_plugin.refhost.host import make_plugin_manager

UTC = timezone.utc


VPO_STATS = [vpo_stats_script()]


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], datetime]:
    db = tmp_path / "purge.db"
    now = datetime.now(UTC)
    runs = make_history(now, count=150, seed=11)
    import_runs(db, runs)
    return db, runs, now


@pytest.fixture
def any_history(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> tuple[str, list[dict[str, Any]], datetime]:
    """The same history on each engine (a SQLite file, or a schema on the suite's server)."""
    db = engine_database(request, engine, tmp_path / "purge.db")
    now = datetime.now(UTC)
    runs = make_history(now, count=150, seed=11)
    import_runs(db, runs)
    return db, runs, now


def sql_count(db: Any, sql: str) -> int:
    """One count asked through the store's own connection (either engine)."""
    from vpo_stats_plugin.store import open_store

    with open_store(db) as store:
        return store.conn.execute(sql).fetchone()[0]


def stored_ids(db: Any) -> set[str]:
    from vpo_stats_plugin.store import open_store

    with open_store(db) as store:
        return {row[0] for row in store.conn.execute("SELECT id FROM runs").fetchall()}


def expected_of(runs: list[dict[str, Any]], now: datetime) -> Expected:
    return Expected(runs, socket.gethostname(), now)


def raw_count(db: Path, sql: str, *params: Any) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def answers(runner: Any, db: Path) -> dict[str, Any]:
    """Everything the aggregate commands say, for comparing two databases."""
    return {
        "summary": json_of(invoke(runner, db, "summary", "--format", "json")),
        "policies": json_of(invoke(runner, db, "policies", "--format", "json")),
        "trend": json_of(invoke(runner, db, "trend", "--by", "day", "--format", "json")),
        "policy": json_of(invoke(runner, db, "policy", POLICIES[1], "--format", "json")),
    }


# ---------------------------------------------------------------------------------- status


def test_status_counts_runs_and_recording_errors(db_path: Path, runner: Any) -> None:
    pm = make_plugin_manager()
    for n in range(2):  # a host that forgot vpo_before_file: counted, never raised
        pm.hook.vpo_after_file(
            job={"id": f"job-{n}", "path": f"/nowhere/{n}.mkv"}, result={"success": True}
        )
    hooks.reset()  # the recorder flushes what it counted
    body = json_of(invoke(runner, db_path, "status", "--format", "json"))
    assert body["path"] == str(db_path)
    assert body["schema_version"] == raw_count(db_path, "SELECT count(*) FROM _migrations") >= 1
    assert body["runs"] == 2 and body["runs_by_status"] == {"succeeded": 2}
    assert body["recording_errors"] == 2
    (cause,) = body["recording_error_causes"]
    assert cause["cause"] == "missing-before-file" and cause["count"] == 2
    on_disk = sum(
        p.stat().st_size
        for p in db_path.parent.glob("stats.db*")
        if p.name in (db_path.name, db_path.name + "-wal")
    )
    assert body["size_bytes"] == on_disk
    text = invoke(runner, db_path, "status").stdout
    assert "recording errors  2" in text and "missing-before-file" in text and str(db_path) in text


def test_status_of_a_history(history: tuple, runner: Any) -> None:
    db, runs, now = history
    e = expected_of(runs, now)
    body = json_of(invoke(runner, db, "status", "--format", "json"))
    by_status: dict[str, int] = {}
    for r in e.runs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert body["runs"] == len(runs) and body["runs_by_status"] == by_status
    starts = sorted(r["_started"] for r in e.runs)
    assert body["first_run_at"] == starts[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert body["last_run_at"] == starts[-1].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert body["recording_errors"] == 0 and body["pending_migrations"] == []


def test_path_prints_only_the_path(tmp_path: Path, runner: Any) -> None:
    result = invoke(runner, tmp_path / "x" / "stats.db", "path")
    assert result.exit_code == 0 and result.stdout == f"{tmp_path / 'x' / 'stats.db'}\n"
    assert not (tmp_path / "x").exists()  # printing the path creates nothing
    from vpo_stats_plugin.cli import standalone_group

    env = runner.invoke(standalone_group(), ["path"])
    assert env.stdout == f"{os.environ['VPO_STATS_DATABASE']}\n"


# ---------------------------------------------------------------------------------- backup


def test_backup_is_a_complete_usable_copy(history: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs, _ = history
    dest = tmp_path / "copies" / "b.db"
    dest.parent.mkdir()
    result = invoke(runner, db, "backup", str(dest))
    assert result.exit_code == 0, result.output
    assert f"Backed up {len(runs)} runs to {dest}" in result.stdout
    assert sorted(p.name for p in dest.parent.iterdir()) == ["b.db"]
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert answers(runner, dest) == answers(runner, db)
    assert read_raw(dest) == read_raw(db)


def test_backup_of_a_live_database(history: tuple, runner: Any, tmp_path: Path) -> None:
    """Committed writes still in the WAL are in the copy; a writer's open transaction is not."""
    db, runs, now = history
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")  # keep what follows in the WAL
    writer.execute("SELECT count(*) FROM runs").fetchone()  # and keep the WAL open
    more = make_history(now, count=20, seed=99)
    import_runs(db, more)
    assert Path(f"{db}-wal").stat().st_size > 0
    result = invoke(runner, db, "backup", str(tmp_path / "live.db"))
    assert result.exit_code == 0, result.output
    assert f"Backed up {len(runs) + len(more)} runs" in result.stdout
    assert {r["id"] for r in read_raw(tmp_path / "live.db")} == {r["id"] for r in runs + more}
    # the same copy, made while another process is in the middle of a write
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO runs (id, path, node, status, started_at) VALUES ('uncommitted', '/u', 'n', "
        "'running', '2026-01-01T00:00:00.000000Z')"
    )
    try:
        from vpo_stats_plugin.store import open_store

        with open_store(db) as store:
            store.backup(tmp_path / "during.db")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert read_raw(tmp_path / "during.db") == read_raw(tmp_path / "live.db")


def test_backup_refuses_to_overwrite_unless_forced(
    history: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs, _ = history
    dest = tmp_path / "old.db"
    dest.write_bytes(b"precious")
    refused = invoke(runner, db, "backup", str(dest))
    assert refused.exit_code == 1 and "--force" in refused.stderr and str(dest) in refused.stderr
    assert dest.read_bytes() == b"precious"
    forced = invoke(runner, db, "backup", "--force", str(dest))
    assert forced.exit_code == 0 and len(read_raw(dest)) == len(runs)


def test_backup_bad_destinations(history: tuple, runner: Any, tmp_path: Path) -> None:
    db, _, _ = history
    nowhere = invoke(runner, db, "backup", str(tmp_path / "no" / "such" / "dir.db"))
    assert nowhere.exit_code == 1 and "does not exist" in nowhere.stderr
    itself = invoke(runner, db, "backup", "--force", str(db))
    assert itself.exit_code == 2 and "live database" in itself.stderr
    assert "Traceback" not in itself.output + nowhere.output


def test_backup_to_an_unwritable_place_is_a_clean_error(history: tuple, runner: Any) -> None:
    """/proc takes no new files, root or not: an error naming DEST, exit 1, no traceback."""
    db, _, _ = history
    done = subprocess.run(
        [*VPO_STATS, "--db", str(db), "backup", "/proc/x.db"], capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    assert "cannot write /proc/x.db" in done.stderr and "Traceback" not in done.stderr


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``path`` made immutable (chattr +i), which stops root too; skips where it cannot be."""
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_backup_into_an_immutable_directory(history: tuple, tmp_path: Path) -> None:
    db, _, _ = history
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked):
        done = subprocess.run(
            [*VPO_STATS, "--db", str(db), "backup", str(locked / "b.db")],
            capture_output=True,
            text=True,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot write {locked / 'b.db'}: Operation not permitted" in done.stderr
    assert "Traceback" not in done.stderr and list(locked.iterdir()) == []


def test_backup_refuses_fifos_and_devices_and_follows_symlinks(
    history: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs, _ = history
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for dest in (fifo, Path("/dev/null")):
        refused = invoke(runner, db, "backup", "--force", str(dest))
        assert refused.exit_code == 1
        assert "a backup must be a regular file" in refused.stderr, refused.stderr
    assert fifo.is_fifo() and Path("/dev/null").is_char_device()
    # a symlink: its target is the backup, the link stays
    (tmp_path / "link.db").symlink_to("real.db")
    made = invoke(runner, db, "backup", str(tmp_path / "link.db"))
    assert made.exit_code == 0, made.output
    assert (tmp_path / "link.db").is_symlink() and len(read_raw(tmp_path / "real.db")) == len(runs)
    refused = invoke(runner, db, "backup", str(tmp_path / "link.db"))
    assert refused.exit_code == 1 and "--force" in refused.stderr
    # someone else's DEST.partial is not the temporary file
    theirs = tmp_path / "b.db.partial"
    theirs.write_bytes(b"not ours")
    made = invoke(runner, db, "backup", str(tmp_path / "b.db"))
    assert made.exit_code == 0, made.output
    assert theirs.read_bytes() == b"not ours"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("b.db")) == [
        "b.db",
        "b.db.partial",
    ]


# ----------------------------------------------------------------------------------- purge


PURGES = [
    (["--policy", POLICIES[1]], {"policy": POLICIES[1]}),
    (["--node", NODES[0], "--status", "failed"], {"node": NODES[0], "status": "failed"}),
    (["--status", "interrupted"], {"status": "interrupted"}),
    (["--status", "running"], {"status": "running"}),
]


@pytest.mark.parametrize("args, chosen", PURGES)
def test_purge_dry_run_counts_exactly_and_deletes_nothing(
    any_history: tuple, runner: Any, args: list[str], chosen: dict
) -> None:
    db, runs, now = any_history
    e = expected_of(runs, now)
    matched = [r for r in e.select(**chosen) if r["status"] != "running"]
    before = answers(runner, db)
    result = invoke(runner, db, "purge", *args, "--dry-run")
    assert result.exit_code == 0
    n = len(matched)
    assert result.stdout.startswith(f"{n} run{' matches' if n == 1 else 's match'} (")
    assert answers(runner, db) == before
    body = json_of(invoke(runner, db, "purge", *args, "--dry-run", "--format", "json"))
    token = Token.parse(body.pop("token"))
    assert body == {"matched": n, "deleted": 0}
    assert (token.matched, token.digest) == set_digest(r["id"] for r in matched)


@pytest.mark.parametrize("args, chosen", PURGES)
def test_purge_yes_deletes_and_totals_stay_right(
    any_history: tuple, runner: Any, tmp_path: Path, args: list[str], chosen: dict
) -> None:
    db, runs, now = any_history
    e = expected_of(runs, now)
    gone = {r["id"] for r in e.select(**chosen) if r["status"] != "running"}
    result = invoke(runner, db, "purge", *args, "--yes")
    assert result.exit_code == 0, result.output
    if gone:
        assert f"Deleted {len(gone)} run" in result.stdout
    kept = [r for r in runs if r["id"] not in gone]
    left = expected_of(kept, now)
    assert json_of(invoke(runner, db, "summary", "--format", "json")) == left.summary(
        left.runs, {"since": None, "until": None, "policy": None, "node": None, "status": None}
    )
    body = json_of(invoke(runner, db, "trend", "--by", "week", "--format", "json"))
    assert body["points"] == left.trend(left.runs, {}, "week")["points"]
    body = json_of(invoke(runner, db, "policies", "--format", "json"))
    assert body["policies"] == left.policies(left.runs, {})["policies"]
    # actions and phases went with their runs; the rollups equal ones rebuilt from raw rows
    orphans = "SELECT count(*) FROM {} WHERE run_id NOT IN (SELECT id FROM runs)"
    assert sql_count(db, orphans.format("actions")) == sql_count(db, orphans.format("phases")) == 0
    checked = json_of(invoke(runner, db, "rebuild", "--check", "--format", "json"))
    assert checked["differing_rows"] == 0, checked


def test_purge_before_dates_and_ages(any_history: tuple, runner: Any) -> None:
    db, runs, now = any_history
    e = expected_of(runs, now)
    day = (now - timedelta(days=200)).date()
    older = [r for r in e.runs if r["_started"] < day_start(day) and r["status"] != "running"]
    dry = json_of(
        invoke(runner, db, "purge", "--before", day.isoformat(), "--dry-run", "--format", "json")
    )
    assert dry["matched"] == len(older) > 0
    # --before 1y: everything started more than 365 days ago
    year = [r for r in e.runs if r["_started"] < now - timedelta(days=365)]
    done = json_of(invoke(runner, db, "purge", "--before", "1y", "--yes", "--format", "json"))
    assert done == {"matched": len(year), "deleted": len(year), "token": None} and year
    assert stored_ids(db) == {r["id"] for r in runs} - {r["id"] for r in year}


def test_purge_all_leaves_zeros_but_running_runs(any_history: tuple, runner: Any) -> None:
    db, runs, now = any_history
    e = expected_of(runs, now)
    running = [r for r in e.runs if r["status"] == "running"]
    result = invoke(runner, db, "purge", "--all", "--yes")
    assert result.exit_code == 0
    assert f"Deleted {len(runs) - len(running)} runs." in result.stdout
    body = json_of(invoke(runner, db, "summary", "--format", "json"))
    assert body["runs"] == body["running"] == len(running) == 2
    assert body["files"] == len({r["path"] for r in running})
    assert body["size_before_bytes"] == 0 and body["tracks_removed"]["audio"] == 0


def test_a_large_purge_says_it_will_take_a_while(
    any_history: tuple, runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vpo_stats_plugin.cli import manage

    db, runs, _ = any_history
    failed = sum(r["status"] == "failed" for r in runs)
    rest = json_of(invoke(runner, db, "purge", "--all", "--dry-run", "--format", "json"))
    rest = rest["matched"] - failed
    assert 0 < failed < rest
    monkeypatch.setattr(manage, "LARGE_PURGE", rest)  # what "large" is, made small
    small = invoke(runner, db, "purge", "--status", "failed", "--yes")
    assert small.exit_code == 0 and f"Deleted {failed} run" in small.stdout
    assert "in one transaction" not in small.stderr
    large = invoke(runner, db, "purge", "--all", "--yes")
    assert large.exit_code == 0 and f"Deleted {rest} runs." in large.stdout
    assert f"Deleting {rest} runs in one transaction: a purge this large" in large.stderr


def test_purge_without_a_terminal_refuses(any_history: tuple, runner: Any) -> None:
    db, runs, _ = any_history
    result = invoke(runner, db, "purge", "--status", "failed")
    assert result.exit_code == 1
    assert "--yes" in result.stderr and "terminal" in result.stderr
    assert len(stored_ids(db)) == len(runs)


def test_purge_nothing_matching(any_history: tuple, runner: Any) -> None:
    db, _, _ = any_history
    result = invoke(runner, db, "purge", "--policy", "no such policy")
    assert result.exit_code == 0 and result.stdout.startswith("No runs match")


@pytest.mark.parametrize(
    "args, names",
    [
        ([], "--all"),
        (["--all", "--policy", "x"], "'--all'"),
        (["--before", "2026-01-01", "--until", "2026-02-01"], "'--before'"),
        (["--before", "yesterday"], "'--before'"),
        (["--since", "soon"], "'--since'"),
        (["--until", "2026-13-01"], "'--until'"),
        (["--status", "done"], "'--status'"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "'--until'"),
    ],
)
def test_purge_usage_errors(any_history: tuple, runner: Any, args: list[str], names: str) -> None:
    db, runs, _ = any_history
    result = invoke(runner, db, "purge", *args, "--yes")
    assert result.exit_code == 2, result.output
    assert names in result.stderr and "Usage:" in result.stderr
    assert "Traceback" not in result.output
    assert len(stored_ids(db)) == len(runs)


def test_purge_is_one_transaction(history: tuple, runner: Any) -> None:
    """A delete that fails halfway (a trigger refuses one run) leaves everything as it was."""
    db, runs, now = history
    e = expected_of(runs, now)
    victims = [r for r in e.select(policy=POLICIES[0]) if r["status"] != "running"]
    last = max(victims, key=lambda r: r["id"])
    before = answers(runner, db)
    conn = sqlite3.connect(db)
    conn.execute(
        f"CREATE TRIGGER refuse BEFORE DELETE ON runs WHEN old.id = '{last['id']}' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
    )
    conn.commit()
    conn.close()
    result = invoke(runner, db, "purge", "--policy", POLICIES[0], "--yes")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "refused by test" in result.stderr
    assert len(read_raw(db)) == len(runs)
    assert answers(runner, db) == before


# ------------------------------------------------------------------- purge through a terminal


def _on_a_terminal(
    db: Path, args: list[str], answer: bytes, meanwhile: Callable[[], None] | None = None
) -> tuple[int, str]:
    """Run `vpo-stats purge` with its stdin on a pseudo-terminal, answer the prompt (after
    ``meanwhile`` ran, if given)."""
    main, secondary = pty.openpty()
    env = {**os.environ, "VPO_STATS_DATABASE": str(db)}
    proc = subprocess.Popen(
        [*VPO_STATS, "purge", *args],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(secondary)
    try:
        deadline = time.monotonic() + 20
        seen = b""
        while b"for good?" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)  # type: ignore[union-attr]
                if not chunk:
                    break
                seen += chunk
        assert b"for good?" in seen, seen
        if meanwhile is not None:
            meanwhile()
        os.write(main, answer)
        out, err = proc.communicate(timeout=20)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, (out + seen + err).decode()


def test_purge_asks_on_a_terminal(history: tuple) -> None:
    db, runs, now = history
    e = expected_of(runs, now)
    failed = [r for r in e.runs if r["status"] == "failed"]
    code, text = _on_a_terminal(db, ["--status", "failed"], b"n\n")
    assert code == 1 and f"{len(failed)} runs match" in text and "Aborted" in text
    assert len(read_raw(db)) == len(runs)
    code, text = _on_a_terminal(db, ["--status", "failed"], b"y\n")
    assert code == 0 and f"Deleted {len(failed)} runs." in text
    assert len(read_raw(db)) == len(runs) - len(failed)


def test_purge_deletes_nothing_when_runs_arrive_between_count_and_prompt(
    history: tuple, tmp_path: Path
) -> None:
    """The count is what the prompt asks about: runs a host records while the user reads it
    are not deleted with the others; the purge refuses, deleting nothing."""
    db, runs, now = history
    policy = POLICIES[1]
    counted = [r for r in expected_of(runs, now).select(policy=policy) if r["status"] != "running"]
    files = []
    for n in range(3):
        media = tmp_path / f"late-{n}.mkv"
        media.write_bytes(b"late run %d" % n)
        files.append(str(media))

    def host_records_three() -> None:
        done = run_host({"files": files, "policy": policy, "actions": 1}, host_env(db))
        assert done.returncode == 0 and len(done.of("file")) == 3, done.stderr

    code, text = _on_a_terminal(db, ["--policy", policy], b"y\n", host_records_three)
    assert f"{len(counted)} runs match" in text
    assert code == 1, text
    assert "nothing deleted" in text and f"{len(counted)} then, {len(counted) + 3} now" in text
    assert "Traceback" not in text
    assert len(read_raw(db)) == len(runs) + 3
    # counted again, the same purge goes through: the runs it now asks about
    code, text = _on_a_terminal(db, ["--policy", policy], b"y\n")
    assert code == 0 and f"Deleted {len(counted) + 3} runs." in text, text
    assert len(read_raw(db)) == len(runs) - len(counted)


# ---------------------------------------------------------------------------------- rebuild


def test_rebuild_checks_and_corrects_the_rollups(history: tuple, runner: Any) -> None:
    db, runs, now = history
    e = expected_of(runs, now)
    # kept run by run through imports: they match (sums of seconds added in another order too)
    checked = invoke(runner, db, "rebuild", "--check")
    assert checked.exit_code == 0
    assert f"The rollups match the {len(runs)} runs" in checked.stdout
    # rows gone wrong behind the plugin's back: a day counts a run too many, a path is lost
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE rollup_daily SET runs = runs + 1 WHERE (day, policy, node, status) = "
        "(SELECT day, policy, node, status FROM rollup_daily LIMIT 1)"
    )
    conn.execute("DELETE FROM rollup_paths WHERE path = (SELECT MIN(path) FROM rollup_paths)")
    conn.commit()
    conn.close()
    tampered = raw_count(db, "SELECT SUM(runs) FROM rollup_daily")
    found = invoke(runner, db, "rebuild", "--check", "--format", "json")
    assert found.exit_code == 1
    body = json.loads(found.stdout)
    assert body["differing_rows"] == 2 and body["checked_only"] is True
    assert body["differing_by_table"] == {"rollup_daily": 1, "rollup_paths": 1}
    assert raw_count(db, "SELECT SUM(runs) FROM rollup_daily") == tampered  # nothing changed
    fixed = invoke(runner, db, "rebuild")
    assert (
        fixed.exit_code == 0 and "2 rows corrected (rollup_daily 1, rollup_paths 1)" in fixed.stdout
    )
    summary = json_of(invoke(runner, db, "summary", "--format", "json"))
    assert summary == e.summary(e.runs, summary["filters"])
    again = invoke(runner, db, "rebuild", "--check")
    assert again.exit_code == 0 and "match" in again.stdout


def test_rebuild_check_reads_a_database_it_cannot_write(history: tuple, runner: Any) -> None:
    """--check changes nothing, so an immutable database (root cannot write it either) will do;
    it still finds what differs."""
    db, _, _ = history
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE rollup_total SET runs = runs + 1 WHERE (policy, node, status) = "
        "(SELECT policy, node, status FROM rollup_total LIMIT 1)"
    )
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with immutable(db):
        found = invoke(runner, db, "rebuild", "--check", "--format", "json")
        again = invoke(runner, db, "rebuild", "--check")
    assert found.exit_code == 1, found.output
    body = json.loads(found.stdout)
    assert body["differing_by_table"] == {"rollup_total": 1} and body["checked_only"]
    assert again.exit_code == 1 and "1 rollup row differs" in again.stdout
    assert db.read_bytes() == before


def test_rebuild_check_never_upgrades(tmp_path: Path, runner: Any) -> None:
    """A database of an older schema is left as it is (an upgrade is a change), exit 65."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript((Path(__file__).parent / "fixtures" / "schema_v1.sql").read_text())
    conn.close()
    before = db.read_bytes()
    checked = invoke(runner, db, "rebuild", "--check")
    assert checked.exit_code == 65 and "older schema" in checked.stderr, checked.output
    assert "`vpo-stats rebuild`" in checked.stderr
    assert db.read_bytes() == before
    missing = invoke(runner, tmp_path / "none.db", "rebuild", "--check")
    assert missing.exit_code == 66 and not (tmp_path / "none.db").exists()
