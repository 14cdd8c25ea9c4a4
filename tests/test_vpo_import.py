"""import-vpo: VPO databases of every schema shape, read-only, mapped honestly, idempotent, followed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import vpo_fixtures as vf
from click.testing import CliRunner
from conftest import engine_database

from vpo_stats_plugin.cli.vpo import follow, import_once
from vpo_stats_plugin.errors import DatabaseUnusable, InputMissing
from vpo_stats_plugin.filters import Filters
from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.vpo_import import (
    VpoUnavailable,
    default_vpo_path,
    open_vpo,
    read_vpo_runs,
)

ALL_SHAPES = (*vf.SHAPES, vf.FUTURE)
NODE = "nas-1"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _finish(row: vf.VpoRow) -> datetime:
    return datetime.fromisoformat(row.processed_at).astimezone(timezone.utc)


def _start(row: vf.VpoRow) -> datetime:
    return _finish(row) - timedelta(seconds=row.duration_seconds)


def _digests(path: Path) -> dict[str, str]:
    out = {}
    for suffix in ("", "-wal"):
        p = Path(f"{path}{suffix}")
        if p.exists():
            out[suffix or "db"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(params=ALL_SHAPES, ids=lambda v: f"schema{v}")
def shape(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def vpo_db(tmp_path: Path, shape: int) -> tuple[Path, list[vf.VpoRow]]:
    rows = vf.make_rows(40, shape, seed=shape)
    return vf.build_vpo_db(tmp_path / "vpo dir" / "library.db", shape, rows), rows


@pytest.fixture(autouse=True)
def _vpo_dir(tmp_path: Path) -> None:
    (tmp_path / "vpo dir").mkdir()


# -- the reader, every column, every shape ---------------------------------------------------


def test_every_field_of_every_row_is_mapped(vpo_db: tuple[Path, list[vf.VpoRow]], shape: int):
    path, rows = vpo_db
    got = [run for _, run in read_vpo_runs(path, node=NODE)]
    assert [r["id"] for r in got] == [r.id for r in rows]
    for row, run in zip(rows, got):
        assert run["path"] == row.path
        assert run["policy"] == row.policy_name
        assert run["node"] == NODE
        assert run["source"] == "vpo"
        assert run["status"] == ("succeeded" if row.success else "failed")
        assert run["error"] == row.error_message
        assert run["finished_at"] == _iso(_finish(row))
        assert run["started_at"] == _iso(_start(row))
        assert run["duration_seconds"] == row.duration_seconds
        assert run["size_before_bytes"] == row.size_before
        assert run["size_after_bytes"] == row.size_after
        assert run["saved_bytes"] == row.size_before - row.size_after == row.size_change
        assert run["tracks_before"] == {
            "video": None,
            "audio": row.audio_before,
            "subtitle": row.subtitle_before,
            "attachment": row.attachments_before,
        }
        assert run["tracks_after"] == {
            "video": None,
            "audio": row.audio_after,
            "subtitle": row.subtitle_after,
            "attachment": row.attachments_after,
        }
        assert run["video_source_codec"] == row.video_source_codec
        assert run["video_target_codec"] == row.video_target_codec
        assert run["video_transcode_skipped"] is row.video_transcode_skipped
        assert run["video_skip_reason"] == row.video_skip_reason
        assert run["audio_tracks_transcoded"] is None  # VPO always writes 0: unknown
        assert run["audio_tracks_preserved"] is None
        assert run["encoder_type"] == (row.encoder_type if shape >= 21 else None)
        assert run["job_id"] == (row.job_id if shape >= 23 else None)
        assert run["phases_completed"] == row.phases_completed
        assert run["phases_total"] == row.phases_total
        assert run["total_changes"] == row.total_changes
        assert run["hash_before"] == f"sha256-16k:{row.hash_before}"
        assert run["hash_after"] == (row.hash_after and f"sha256-16k:{row.hash_after}")
        assert run["output_path"] is None
        assert run["actions"] == []
        assert [p["name"] for p in run["phases"]] == [p.name for p in row.phases]
        for phase, mine in zip(row.phases, run["phases"]):
            assert mine["wall_time_seconds"] == phase.wall_time_seconds
            assert mine["encoding_fps"] == phase.encoding_fps
            kbps = phase.encoding_bitrate_kbps
            assert mine["encoding_bitrate"] == (None if kbps is None else kbps * 1000)
            assert mine["bytes_read"] is None and mine["bytes_written"] is None


def test_fixture_rows_are_varied():
    """The fixture covers what the mapping must get right, so the test above means something."""
    rows = vf.make_rows(40, 27, seed=27)
    assert any(not r.success for r in rows) and any(r.success for r in rows)
    assert any(r.video_source_codec is None for r in rows)
    assert any(not r.phases for r in rows)
    assert any(r.size_change < 0 for r in rows)
    assert any(" " in r.policy_name for r in rows)
    assert any(not r.policy_name.isascii() for r in rows)
    assert any("." not in r.processed_at for r in rows)  # a finish on the exact second
    assert any(_start(r).date() != _finish(r).date() for r in rows)  # crosses midnight
    assert any(r.encoder_type == "hardware" for r in rows)
    assert any(p.encoding_bitrate_kbps for r in rows for p in r.phases)
    assert len({r.path for r in rows}) < len(rows)  # some files processed twice


def test_newer_schema_shows_its_version_and_its_extra_columns_are_ignored(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "future.db", vf.FUTURE, vf.make_rows(5, vf.FUTURE))
    conn = sqlite3.connect(path)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(processing_stats)")]
    conn.close()
    assert cols.index("container_before") < cols.index("audio_tracks_before")  # columns moved
    seen = []
    totals, _ = import_once(
        path,
        None,
        node=NODE,
        on_start=lambda reader, start, renumbered: seen.append(reader.schema.describe()),
    )
    assert totals.read == 5 and not totals.skipped
    assert seen == [
        f"VPO schema version {vf.FUTURE} (newer than 27, the newest checked: reading known columns by name)"
    ]


def test_since_takes_only_runs_started_from_then(tmp_path: Path):
    rows = vf.make_rows(30, 27)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows)
    cut = _start(rows[17])
    got = [run["id"] for _, run in read_vpo_runs(path, node=NODE, since=cut)]
    assert got == [r.id for r in rows if _start(r) >= cut]
    assert 0 < len(got) < len(rows)


def test_bad_rows_are_skipped_with_their_id_and_why(tmp_path: Path):
    rows = vf.make_rows(6, 27)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows)
    conn = sqlite3.connect(path)  # foreign keys off: what an old or hand-edited database holds
    conn.execute("UPDATE processing_stats SET file_id = 999 WHERE id = ?", (rows[1].id,))
    conn.execute(
        "UPDATE processing_stats SET processed_at = 'last tuesday' WHERE id = ?", (rows[3].id,)
    )
    conn.commit()
    conn.close()
    totals, _ = import_once(path, None, node=NODE)
    assert totals.read == 6
    assert dict(totals.skipped) == {
        rows[1].id: "file_id 999 is not in VPO's files table: no path",
        rows[3].id: "processed_at 'last tuesday' is not an ISO-8601 time",
    }


def test_action_rows_are_read_when_a_vpo_writes_them(tmp_path: Path):
    rows = vf.make_rows(2, 27)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO action_results (stats_id, action_type, track_type, track_index, before_state,"
        " after_state, success, duration_ms, rule_reference, message)"
        " VALUES (?, 'remove', 'audio', 2, '{\"codec\": \"ac3\"}', NULL, 0, 12, 'keep eng', 'oops')",
        (rows[0].id,),
    )
    conn.commit()
    conn.close()
    runs = {run["id"]: run for _, run in read_vpo_runs(path, node=NODE)}
    assert runs[rows[0].id]["actions"] == [
        {
            "type": "remove",
            "track_type": "audio",
            "track_index": 2,
            "before": {"codec": "ac3"},
            "after": None,
            "success": False,
            "duration_ms": 12,
            "rule": "keep eng",
            "message": "oops",
            "phase": None,
        }
    ]
    assert runs[rows[1].id]["actions"] == []


# -- what is not a VPO database ------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputMissing, match="does not exist"):
        open_vpo(tmp_path / "nope.db")


@pytest.mark.parametrize("kind", ["random bytes", "empty", "truncated", "no stats tables", "dir"])
def test_not_a_vpo_database(tmp_path: Path, kind: str):
    path = tmp_path / "lib.db"
    if kind == "random bytes":
        path.write_bytes(os.urandom(8192))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        vf.build_vpo_db(path, 27, vf.make_rows(200, 27))
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "no stats tables":
        conn = sqlite3.connect(path)  # a VPO database from before schema 18
        conn.executescript(vf._META + vf._FILES.format(extra=""))
        conn.execute("INSERT INTO _meta VALUES ('schema_version', '17')")
        conn.commit()
        conn.close()
    else:
        path.mkdir()
    with pytest.raises(DatabaseUnusable) as err:
        import_once(path, None, node=NODE)
    assert str(path) in str(err.value)
    if kind == "no stats tables":
        assert "no processing_stats table (VPO schema 17" in str(err.value)


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("VPO_DATABASE_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_vpo_path() == tmp_path / ".vpo" / "library.db"
    monkeypatch.setenv("VPO_DATABASE_PATH", "~/elsewhere/lib.db")
    assert default_vpo_path() == tmp_path / "elsewhere" / "lib.db"


# -- never writing to VPO's database -------------------------------------------------------


def test_reading_changes_nothing_while_vpo_holds_it_open_in_wal(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, vf.make_rows(10, 27))
    writer = vf.vpo_connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    vf.insert_row(writer, vf.make_rows(1, 27, seed=99)[0])
    writer.commit()  # this row lives only in the WAL
    before = _digests(path)
    assert "-wal" in before
    totals, _ = import_once(path, None, node=NODE)
    assert totals.read == 11
    assert _digests(path) == before
    assert writer.execute("SELECT value FROM _meta").fetchone()[0] == "27"
    writer.close()


def test_reading_after_vpo_crashed_leaves_its_wal_alone(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, vf.make_rows(3, 27))
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[2]); import vpo_fixtures as vf;"
        "from pathlib import Path; c = vf.vpo_connect(Path(sys.argv[1]));"
        "c.execute('PRAGMA wal_autocheckpoint = 0');"
        "vf.insert_row(c, vf.make_rows(1, 27, seed=5)[0]); c.commit(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(Path(__file__).parent)], check=True)
    before = _digests(path)
    assert "-wal" in before
    totals, _ = import_once(path, None, node=NODE)
    assert totals.read == 4
    assert _digests(path) == before  # no checkpoint, no recovery written back


def test_read_only_connection_refuses_writes(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "lib.db", 27)
    conn = open_vpo(path)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM processing_stats")
    conn.close()


# -- the command, end to end against the stats store ----------------------------------------


def cli(db: Path, *args: str) -> tuple[int, str, str]:
    """Run `vpo-stats --db DB ...`; answers exit code, stdout, stderr."""
    from vpo_stats_plugin.cli import stats

    result = CliRunner().invoke(stats, ["--db", str(db), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def cli_json(db: Path, *args: str) -> dict:
    code, out, err = cli(db, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def vpo_report_summary(path: Path) -> dict[str, int]:
    """What `vpo report summary` prints for runs, succeeded, failed, sizes, from VPO's rows."""
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(success = 1), 0), COALESCE(SUM(success = 0), 0),"
        " COALESCE(SUM(size_before), 0), COALESCE(SUM(size_after), 0),"
        " COALESCE(SUM(size_change), 0) FROM processing_stats"
    ).fetchone()
    conn.close()
    keys = ("runs", "succeeded", "failed", "size_before_bytes", "size_after_bytes", "saved_bytes")
    return dict(zip(keys, row))


def _totals(rows: list[vf.VpoRow]) -> dict[str, int]:
    return {
        "runs": len(rows),
        "succeeded": sum(r.success for r in rows),
        "failed": sum(not r.success for r in rows),
        "size_before_bytes": sum(r.size_before for r in rows),
        "size_after_bytes": sum(r.size_after for r in rows),
        "saved_bytes": sum(r.size_change for r in rows),
    }


def _period(moment: datetime, by: str) -> str:
    day = moment.date()
    if by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.isoformat()[:7] if by == "month" else day.isoformat()


def test_import_then_summary_policies_trend_agree_with_vpo(
    tmp_path: Path, vpo_db: tuple[Path, list[vf.VpoRow]], engine: str, request: Any
):
    path, rows = vpo_db
    db = engine_database(request, engine, tmp_path / "stats.db")
    code, out, err = cli(db, "import-vpo", str(path), "--node", NODE)
    assert code == 0, err
    assert out.splitlines()[0] == "40 rows read, 40 imported, 0 already present, 0 skipped"

    summary = cli_json(db, "summary")
    expected = _totals(rows)
    assert vpo_report_summary(path) == expected  # the fixture and VPO's own sums agree
    assert {k: summary[k] for k in expected} == expected
    assert summary["interrupted"] == summary["running"] == 0
    assert summary["files"] == len({r.path for r in rows})
    assert summary["saved_percent"] == round(
        expected["saved_bytes"] * 100 / expected["size_before_bytes"], 2
    )
    assert summary["tracks_removed"] == {
        "audio": sum(max(0, r.audio_before - r.audio_after) for r in rows),
        "subtitle": sum(max(0, r.subtitle_before - r.subtitle_after) for r in rows),
        "attachment": sum(max(0, r.attachments_before - r.attachments_after) for r in rows),
    }
    assert summary["videos_transcoded"] == sum(
        r.video_target_codec is not None and not r.video_transcode_skipped for r in rows
    )
    assert summary["videos_transcode_skipped"] == sum(r.video_transcode_skipped for r in rows)
    assert summary["audio_tracks_transcoded"] == summary["audio_tracks_preserved"] == 0
    assert summary["duration_seconds"]["total"] == pytest.approx(
        sum(r.duration_seconds for r in rows), abs=0.001
    )
    assert summary["first_run_at"] == _iso(min(_start(r) for r in rows))
    assert summary["last_run_at"] == _iso(max(_start(r) for r in rows))

    policies = {p["policy"]: p for p in cli_json(db, "policies")["policies"]}
    assert set(policies) == {r.policy_name for r in rows}
    for name, got in policies.items():
        mine = [r for r in rows if r.policy_name == name]
        assert {k: got[k] for k in expected} == _totals(mine)
        assert got["last_run_at"] == _iso(max(_start(r) for r in mine))

    for by in ("day", "week", "month"):
        points = cli_json(db, "trend", "--by", by)["points"]
        periods = sorted({_period(_start(r), by) for r in rows})
        assert [p["period"] for p in points] == periods
        for point in points:
            mine = [r for r in rows if _period(_start(r), by) == point["period"]]
            assert {k: point[k] for k in expected} == _totals(mine)

    one = rows[7]
    detail = cli_json(db, "detail", one.id)
    assert detail["source"] == "vpo" and detail["node"] == NODE
    assert detail["finished_at"] == _iso(_finish(one))
    assert [p["name"] for p in detail["phases"]] == [p.name for p in one.phases]


def test_second_import_changes_nothing(tmp_path: Path, engine: str, request: Any):
    rows = vf.make_rows(30, 27)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows)
    db = engine_database(request, engine, tmp_path / "stats.db")
    assert cli(db, "import-vpo", str(path))[0] == 0
    before = [cli_json(db, what) for what in ("summary", "policies", "trend")]
    exported = cli(db, "export", "--format", "ndjson")
    code, out, _ = cli(db, "import-vpo", str(path))
    assert code == 0
    assert out.splitlines()[0] == "30 rows read, 0 imported, 30 already present, 0 skipped"
    assert [cli_json(db, what) for what in ("summary", "policies", "trend")] == before
    assert cli(db, "export", "--format", "ndjson") == exported


def test_json_totals_and_skipped_rows_are_named(tmp_path: Path):
    rows = vf.make_rows(5, 23)
    path = vf.build_vpo_db(tmp_path / "lib.db", 23, rows)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE processing_stats SET file_id = 4242 WHERE id = ?", (rows[2].id,))
    conn.commit()
    conn.close()
    db = tmp_path / "stats.db"
    code, out, _ = cli(db, "import-vpo", str(path))
    assert code == 0
    assert out.splitlines() == [
        "5 rows read, 4 imported, 0 already present, 1 skipped",
        f"  skipped {rows[2].id}: file_id 4242 is not in VPO's files table: no path",
    ]
    body = cli_json(db, "import-vpo", str(path))
    assert body == {
        "source": str(path),
        "schema_version": 23,
        "dry_run": False,
        "read": 5,
        "imported": 0,
        "present": 4,
        "skipped": [
            {"id": rows[2].id, "reason": "file_id 4242 is not in VPO's files table: no path"}
        ],
    }


def test_dry_run_and_since(tmp_path: Path):
    rows = vf.make_rows(20, 27)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows)
    db = tmp_path / "stats.db"
    code, out, _ = cli(db, "import-vpo", str(path), "--dry-run")
    assert code == 0
    assert out.splitlines()[0] == (
        "20 rows read, 20 would be imported, 0 already present, 0 skipped "
        "(dry run: nothing written)"
    )
    assert not db.exists()
    cut = _start(rows[12])
    code, out, _ = cli(db, "import-vpo", str(path), "--since", _iso(cut))
    newer = [r for r in rows if _start(r) >= cut]
    assert code == 0
    assert (
        out.splitlines()[0]
        == f"{len(newer)} rows read, {len(newer)} imported, 0 already present, 0 skipped"
    )
    assert cli_json(db, "summary")["runs"] == len(newer)
    # a dry run now tells the new rows from the ones already there, and still writes nothing
    before = db.read_bytes()
    body = cli_json(db, "import-vpo", str(path), "--dry-run")
    assert (body["dry_run"], body["read"], body["present"]) == (True, 20, len(newer))
    assert body["imported"] == 20 - len(newer) and body["skipped"] == []
    assert db.read_bytes() == before
    assert cli_json(db, "summary")["runs"] == len(newer)


def test_default_path_comes_from_vpo_database_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = vf.build_vpo_db(tmp_path / "elsewhere.db", 21, vf.make_rows(3, 21))
    monkeypatch.setenv("VPO_DATABASE_PATH", str(path))
    code, out, _ = cli(tmp_path / "stats.db", "import-vpo")
    assert code == 0 and out.startswith("3 rows read, 3 imported")
    monkeypatch.delenv("VPO_DATABASE_PATH")
    code, _, err = cli(tmp_path / "stats.db", "import-vpo")
    assert code == 66
    assert str(Path.home() / ".vpo" / "library.db") in err


@pytest.mark.parametrize(
    ("content", "code"),
    [(None, 66), (b"SQLite format 3\x00" + os.urandom(4000), 65), (b"not a database\n" * 50, 65)],
    ids=["missing", "corrupt", "text"],
)
def test_bad_source_exits_and_writes_nothing(tmp_path: Path, content: bytes | None, code: int):
    path = tmp_path / "library.db"
    if content is not None:
        path.write_bytes(content)
    db = tmp_path / "stats.db"
    got, out, err = cli(db, "import-vpo", str(path))
    assert got == code
    assert str(path) in err and out == ""
    assert not db.exists()


def test_a_database_without_stats_tables_exits_65(tmp_path: Path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    got, _, err = cli(tmp_path / "stats.db", "import-vpo", str(path))
    assert got == 65
    assert "no processing_stats table" in err
    assert not (tmp_path / "stats.db").exists()


def test_bad_options(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "lib.db", 27)
    db = tmp_path / "stats.db"
    assert cli(db, "import-vpo", str(path), "--since", "yesterday-ish")[0] == 2
    assert cli(db, "import-vpo", str(path), "--follow", "--interval", "0s")[0] == 2
    assert cli(db, "import-vpo", str(path), "--follow", "--dry-run")[0] == 2


# -- VPO writing while we read --------------------------------------------------------------


def test_import_while_vpo_writes_in_wal(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, vf.make_rows(3000, 27, seed=3))
    extra = vf.make_rows(300, 27, seed=4, start=datetime(2026, 3, 1, tzinfo=timezone.utc))
    errors: list[BaseException] = []
    written = threading.Event()

    def vpo_writer() -> None:
        try:
            conn = vf.vpo_connect(path)
            conn.execute("PRAGMA busy_timeout = 200")  # VPO would notice a reader blocking it
            for row in extra:
                vf.insert_row(conn, row)
                conn.commit()
            conn.close()
        except BaseException as err:  # noqa: BLE001 (reported by the test)
            errors.append(err)
        written.set()

    thread = threading.Thread(target=vpo_writer)
    thread.start()
    db = tmp_path / "stats.db"
    code, out, err = cli(db, "import-vpo", str(path))
    thread.join()
    assert code == 0, err
    assert not errors
    first = int(out.split()[0])
    assert 3000 <= first <= 3300
    code, out, _ = cli(db, "import-vpo", str(path))
    assert out.splitlines()[0] == (
        f"3300 rows read, {3300 - first} imported, {first} already present, 0 skipped"
    )
    assert cli_json(db, "summary")["runs"] == 3300


def test_a_lock_held_by_vpo_is_a_clear_error(tmp_path: Path):
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, vf.make_rows(3, 27))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE _meta SET value = value")
    try:
        started = time.monotonic()
        with pytest.raises(VpoUnavailable, match="lock"):
            import_once(path, None, node=NODE)
        assert time.monotonic() - started < 30
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- following VPO as it adds rows ------------------------------------------------------------


class Follower:
    """`follow` in a thread with its own stats store, as the command runs it."""

    def __init__(self, path: Path, db: Path, interval: float = 0.05) -> None:
        self.messages: list[str] = []
        self.polls: list[int] = []
        self.stop = threading.Event()
        self.totals = None
        self.error: BaseException | None = None
        self.db = db
        self.thread = threading.Thread(target=self._run, args=(path, interval))
        self.thread.start()

    def _run(self, path: Path, interval: float) -> None:
        store = open_store(self.db)

        def import_fn(runs, skip):
            return store.import_runs(runs)

        try:
            self.totals = follow(
                path,
                import_fn,
                node=NODE,
                interval=interval,
                stop=self.stop,
                say=self.messages.append,
                on_poll=lambda got: self.polls.append(got.imported),
                busy_timeout_ms=50,
            )
        except BaseException as err:  # noqa: BLE001 (reported by the test)
            self.error = err
        finally:
            store.close()

    def imported(self) -> int:
        return sum(self.polls)

    def wait_for(self, what, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"timed out; messages: {self.messages}"
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()
        assert self.error is None, self.error
        return self.totals


def test_follow_picks_up_each_new_row_once(tmp_path: Path, engine: str, request: Any):
    rows = vf.make_rows(60, 27, seed=8)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows[:10])
    stats = engine_database(request, engine, tmp_path / "stats.db")
    follower = Follower(path, stats)
    follower.wait_for(lambda: follower.imported() == 10)
    vf.add_rows(path, rows[10:15])
    follower.wait_for(lambda: follower.imported() == 15)
    polls_before = len(follower.polls)
    follower.wait_for(lambda: len(follower.polls) >= polls_before + 3)  # idle polls read nothing
    vf.add_rows(path, rows[15:60])
    follower.wait_for(lambda: follower.imported() == 60)
    totals = follower.finish()
    assert (totals.read, totals.imported, totals.present, totals.skipped) == (60, 60, 0, [])
    with open_store(stats) as store:
        assert store.summary(Filters())["runs"] == 60


def test_follow_survives_a_missing_file_a_lock_and_a_rebuilt_table(
    tmp_path: Path, engine: str, request: Any
):
    rows = vf.make_rows(40, 27, seed=9)
    path = vf.build_vpo_db(tmp_path / "lib.db", 27, rows[:10])
    stats = engine_database(request, engine, tmp_path / "stats.db")
    follower = Follower(path, stats)
    follower.wait_for(lambda: follower.imported() == 10)

    # the file goes away for a while (VPO restoring a backup), then comes back with more rows
    aside = tmp_path / "aside.db"
    path.rename(aside)
    follower.wait_for(lambda: any("is missing" in m for m in follower.messages))
    vf.add_rows(aside, rows[10:12])
    aside.rename(path)
    follower.wait_for(lambda: follower.imported() == 12)
    assert any("readable again" in m for m in follower.messages)

    # VPO holds an exclusive lock for a while
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE _meta SET value = value")
    follower.wait_for(lambda: any("lock" in m for m in follower.messages))
    holder.execute("COMMIT")
    holder.close()
    vf.add_rows(path, rows[12:20])
    follower.wait_for(lambda: follower.imported() == 20)

    # VPO purges its 10 oldest rows, then rebuilds processing_stats (as its v24->v25 migration
    # did): the rowids start again from 1, below the last one seen
    conn = sqlite3.connect(path)
    conn.executemany("DELETE FROM processing_stats WHERE id = ?", [(r.id,) for r in rows[:10]])
    conn.executescript(
        "CREATE TEMP TABLE keep AS SELECT * FROM processing_stats ORDER BY processed_at DESC;"
        "DELETE FROM processing_stats; INSERT INTO processing_stats SELECT * FROM keep;"
    )
    assert conn.execute("SELECT MAX(rowid) FROM processing_stats").fetchone()[0] == 10
    conn.close()
    vf.add_rows(path, rows[20:40])
    follower.wait_for(lambda: follower.imported() == 40)
    totals = follower.finish()
    assert totals.imported == 40 and not totals.skipped
    assert totals.present == 10  # the rebuilt table was read once more, nothing doubled
    with open_store(stats) as store:
        assert store.summary(Filters())["runs"] == 40


def test_follow_refuses_a_file_that_is_not_vpo_at_the_start(tmp_path: Path):
    path = tmp_path / "lib.db"
    path.write_text("hello\n" * 1000)
    with pytest.raises(DatabaseUnusable):
        follow(
            path,
            lambda runs, skip: {},
            node=NODE,
            interval=0.01,
            stop=threading.Event(),
            say=print,
            max_polls=3,
        )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_follow_command_stops_cleanly(tmp_path: Path, sig: signal.Signals):
    rows = vf.make_rows(25, 23, seed=11)
    path = vf.build_vpo_db(tmp_path / "lib.db", 23, rows[:5])
    db = tmp_path / "stats.db"
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from vpo_stats_plugin.cli import main; sys.exit(main())",
            "--db",
            str(db),
            "import-vpo",
            str(path),
            "--follow",
            "--interval",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def runs() -> int:
        if not db.exists():
            return 0
        with open_store(db) as store:
            return store.summary(Filters())["runs"]

    try:
        deadline = time.monotonic() + 30
        while runs() < 5:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        vf.add_rows(path, rows[5:25])
        while runs() < 25:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["25 rows read, 25 imported, 0 already present, 0 skipped"]
    assert "Following" in err and "Stopping" in err


def test_vpo_stats_import_vpo_inside_the_reference_host(tmp_path: Path):
    rows = vf.make_rows(8, 18)
    path = vf.build_vpo_db(tmp_path / "lib.db", 18, rows)
    db = tmp_path / "stats.db"
    host = [sys.executable, "-m", "vpo_stats_plugin.refhost", "stats", "--db", str(db)]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [*host, "import-vpo", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("8 rows read, 8 imported")
    done = subprocess.run(
        [*host, "summary", "--format", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert json.loads(done.stdout)["saved_bytes"] == vpo_report_summary(path)["saved_bytes"]
