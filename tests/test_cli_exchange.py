"""export and import: round trips, merges, bad lines with their line numbers, constant memory."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import socket
import stat
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from history import (
    NODES,
    POLICIES,
    Expected,
    copy_db,
    import_runs,
    invoke,
    json_of,
    make_history,
    read_raw,
    vpo_stats_script,
)

from vpo_stats_plugin.store.importing import IMPORT_CACHE_KIB

UTC = timezone.utc


@pytest.fixture
def source(recorded: Path, tmp_path: Path) -> tuple[Path, list[dict[str, Any]], datetime]:
    """The recorded history plus fourteen imported months, and every run that is in it."""
    db = copy_db(recorded, tmp_path / "source.db")
    now = datetime.now(UTC)
    imported = make_history(now, count=200, seed=21)
    import_runs(db, imported)
    return db, read_raw(recorded) + imported, now


QUESTIONS = [
    ["summary"],
    ["summary", "--since", "3mo"],
    ["summary", "--since", "2025-12-01", "--until", "2026-03-31"],
    ["summary", "--policy", POLICIES[1], "--status", "succeeded"],
    ["summary", "--node", NODES[2]],
    ["policies", "--sort", "saved"],
    ["policies", "--until", "2026-06-30"],
    ["trend", "--by", "day"],
    ["trend", "--by", "week", "--node", NODES[0]],
    ["trend", "--by", "month"],
    ["policy", POLICIES[0]],
    ["policy", "english"],
    ["recent", "--limit", "1000"],
    ["recent", "--status", "failed"],
]


def all_answers(runner: Any, db: Path) -> list[Any]:
    out = []
    for question in QUESTIONS:
        body = json_of(invoke(runner, db, *question, "--format", "json"))
        if body.get("filters", {}).get("since") and "3mo" in question:
            body["filters"]["since"] = body["filters"]["since"][:16]  # computed a moment apart
        out.append(body)
    return out


def export_to(runner: Any, db: Path, dest: Path, *args: str) -> Path:
    result = invoke(runner, db, "export", "-o", str(dest), *args)
    assert result.exit_code == 0, result.output
    return dest


def test_ndjson_round_trip_reproduces_everything(
    source: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs, _ = source
    dump = export_to(runner, db, tmp_path / "all.ndjson")
    lines = dump.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(runs)
    fresh = tmp_path / "fresh.db"
    result = invoke(runner, fresh, "import", str(dump))
    assert result.exit_code == 0, result.output
    assert (
        f"{len(runs)} runs read from {dump}: {len(runs)} imported, 0 already present, 0 skipped."
        in result.stdout
    )
    assert all_answers(runner, fresh) == all_answers(runner, db)
    # every run, with its actions and phases, comes back exactly: the exports are identical
    again = export_to(runner, fresh, tmp_path / "again.ndjson")
    assert again.read_bytes() == dump.read_bytes()
    for run in runs[:5]:
        assert json_of(invoke(runner, fresh, "detail", run["id"], "--format", "json")) == json_of(
            invoke(runner, db, "detail", run["id"], "--format", "json")
        )


def test_export_lines_are_runs_with_actions_and_phases(
    source: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs, now = source
    e = Expected(runs, socket.gethostname(), now)
    dump = export_to(runner, db, tmp_path / "all.ndjson")
    exported = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    order = sorted(e.runs, key=lambda r: (r["_started"], r["id"]))
    assert [r["id"] for r in exported] == [r["id"] for r in order]
    for run in exported:
        assert run == e.run_json(run["id"])
    assert any(r["actions"] for r in exported) and any(r["phases"] for r in exported)
    assert {r["source"] for r in exported} == {"hooks", "vpo"}


def test_import_is_idempotent(source: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs, _ = source
    dump = export_to(runner, db, tmp_path / "all.ndjson")
    before = all_answers(runner, db)
    result = invoke(runner, db, "import", str(dump))
    assert result.exit_code == 0
    assert f"0 imported, {len(runs)} already present, 0 skipped" in result.stdout
    assert all_answers(runner, db) == before


def test_merging_two_machines(recorded: Path, runner: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    shared = make_history(now, count=30, seed=1)
    a_runs = shared + make_history(now, count=60, seed=2)
    b_runs = shared + make_history(now, count=70, seed=3)
    a, b, merged = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "merged.db"
    import_runs(a, a_runs)
    import_runs(b, b_runs)
    copy_db(recorded, merged)  # the merged database already has history of its own
    own = read_raw(merged)
    for db, name in ((a, "a.ndjson"), (b, "b.ndjson")):
        assert (
            invoke(runner, merged, "import", str(export_to(runner, db, tmp_path / name))).exit_code
            == 0
        )
    union = {r["id"]: r for r in own + a_runs + b_runs}
    e = Expected(list(union.values()), socket.gethostname(), now)
    empty = {"since": None, "until": None, "policy": None, "node": None, "status": None}
    assert json_of(invoke(runner, merged, "summary", "--format", "json")) == e.summary(
        e.runs, empty
    )
    assert json_of(invoke(runner, merged, "policies", "--format", "json")) == e.policies(
        e.runs, empty
    )
    body = json_of(invoke(runner, merged, "trend", "--by", "month", "--format", "json"))
    assert body == e.trend(e.runs, empty, "month")
    second = invoke(runner, merged, "import", str(tmp_path / "b.ndjson"))
    assert f"0 imported, {len(b_runs)} already present" in second.stdout


def test_export_filters(source: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs, now = source
    e = Expected(runs, socket.gethostname(), now)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    if not e.select(since=since, policy=POLICIES[1]):
        since = now - timedelta(days=200)
    dump = export_to(
        runner, db, tmp_path / "f.ndjson", "--since", since.isoformat(), "--policy", POLICIES[1]
    )
    ids = [json.loads(line)["id"] for line in dump.read_text(encoding="utf-8").splitlines()]
    wanted = sorted(
        e.select(since=since, policy=POLICIES[1]), key=lambda r: (r["_started"], r["id"])
    )
    assert ids == [r["id"] for r in wanted] and ids
    failed = invoke(runner, db, "export", "--status", "failed")  # to standard output
    assert failed.exit_code == 0 and failed.stderr == ""
    assert {json.loads(line)["status"] for line in failed.stdout.splitlines()} == {"failed"}


def test_csv_round_trip(source: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs, now = source
    dump = export_to(runner, db, tmp_path / "runs.csv", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(dump.read_text(encoding="utf-8"))))
    assert len(rows) == len(runs)
    assert {"id", "tracks_before_audio", "saved_bytes", "actions", "phases"} <= set(rows[0])
    wire = next(r for r in rows if "Wire" in r["path"])
    assert wire["path"].startswith('/media/tv/The "Wire"/S01E01, ')
    fresh = tmp_path / "from-csv.db"
    result = invoke(runner, fresh, "import", str(dump))
    assert result.exit_code == 0, result.output
    assert all_answers(runner, fresh) == all_answers(runner, db)
    some = next(r for r in runs if r["actions"] and r["phases"] and isinstance(r["file_id"], str))
    assert json_of(invoke(runner, fresh, "detail", some["id"], "--format", "json")) == json_of(
        invoke(runner, db, "detail", some["id"], "--format", "json")
    )


def test_empty_exports(tmp_path: Path, runner: Any) -> None:
    from vpo_stats_plugin.store import open_store

    db = tmp_path / "empty.db"
    open_store(db).close()  # no runs yet (where there is no database at all: exit 66)
    assert invoke(runner, db, "export").stdout == ""
    header = invoke(runner, db, "export", "--format", "csv").stdout
    assert header.startswith("id,job_id,file_id,path,") and header.count("\n") == 1
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    result = invoke(runner, db, "import", str(empty))
    assert result.exit_code == 0 and "0 runs read" in result.stdout
    csv_file = tmp_path / "header.csv"
    csv_file.write_text(header)
    assert invoke(runner, db, "import", str(csv_file)).exit_code == 0


def test_bad_lines_are_reported_by_number_and_skipped_whole(tmp_path: Path, runner: Any) -> None:
    now = datetime.now(UTC)
    good = make_history(now, count=6, seed=4)[:6]
    bad_action = dict(good[5], id="5a5a5a5a-0000-4000-8000-000000000005", actions=[{"type": 3}])
    bad_size = dict(good[4], id="5a5a5a5a-0000-4000-8000-000000000004", size_before_bytes="big")
    lines = [
        json.dumps(good[0]),
        "not json at all",
        "",
        json.dumps(good[1]),
        json.dumps([1, 2, 3]),
        json.dumps(dict(good[2], status="done")),
        json.dumps(bad_action),
        json.dumps(good[3]),
        json.dumps(bad_size),
        json.dumps({k: v for k, v in good[4].items() if k != "node"}),
        '{"id": "x", "path": "/p", "started_at": "yesterday", "status": "failed", "node": "n"}',
    ]
    dump = tmp_path / "mixed.ndjson"
    dump.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe broken bytes\n")
    db = tmp_path / "mixed.db"
    result = invoke(runner, db, "import", str(dump))
    assert result.exit_code == 1
    reported = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    numbers = [int(line.split()[2].rstrip(":")) for line in reported]
    assert numbers == [2, 5, 6, 7, 9, 10, 11, 12]
    assert "line 6: status 'done'" in result.stderr
    assert "line 7: actions[1].type is 3" in result.stderr
    assert "line 9: size_before_bytes is 'big'" in result.stderr
    assert "line 10: missing or non-text field 'node'" in result.stderr
    assert "line 11: started_at 'yesterday'" in result.stderr
    assert "line 12: not UTF-8" in result.stderr
    assert "12 runs read" not in result.stdout and "3 imported" in result.stdout
    stored = read_raw(db)
    assert {r["id"] for r in stored} == {good[0]["id"], good[1]["id"], good[3]["id"]}
    assert "Traceback" not in result.output
    # nothing of a skipped run was written, not even its actions
    import sqlite3

    conn = sqlite3.connect(db)
    orphans = conn.execute(
        "SELECT count(*) FROM actions WHERE run_id NOT IN (SELECT id FROM runs)"
    ).fetchone()[0]
    conn.close()
    assert orphans == 0


def test_bad_csv_rows_have_their_line_numbers(source: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs, _ = source
    dump = export_to(runner, db, tmp_path / "runs.csv", "--format", "csv", "--status", "failed")
    text = dump.read_text(encoding="utf-8")
    assert '"ffmpeg exited with 1:\n' in text  # multi-line errors span physical lines
    rows = list(csv.reader(io.StringIO(text)))
    header, first, second = rows[0], rows[1], rows[2]
    size = header.index("size_before_bytes")
    second[size] = "lots"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, first, second])
    broken = tmp_path / "broken.csv"
    broken.write_text(buffer.getvalue(), encoding="utf-8")
    # the header is line 1; the first row starts on line 2 and spans its cells' line breaks
    expected_line = 3 + sum(cell.count("\n") for cell in first)
    result = invoke(runner, tmp_path / "c.db", "import", str(broken))
    assert result.exit_code == 1
    assert f"skipped line {expected_line}: size_before_bytes:" in result.stderr


@pytest.mark.parametrize(
    "content, code, words",
    [
        (b"SQLite format 3\x00" + b"\x00" * 200, 65, "SQLite database"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 65, "binary"),
        (b"just some notes\nnothing else\n", 65, "not an export"),
    ],
)
def test_files_that_are_not_exports(
    tmp_path: Path, runner: Any, content: bytes, code: int, words: str
) -> None:
    path = tmp_path / "thing.ndjson"
    path.write_bytes(content)
    result = invoke(runner, tmp_path / "db.db", "import", str(path))
    assert result.exit_code == code and words in result.stderr
    assert "Traceback" not in result.output


def test_csv_that_is_not_a_runs_export(tmp_path: Path, runner: Any) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("name,phone\nann,123\n")
    result = invoke(runner, tmp_path / "db.db", "import", str(path))
    assert result.exit_code == 65 and "no id column" in result.stderr


def test_missing_file_is_66(tmp_path: Path, runner: Any) -> None:
    result = invoke(runner, tmp_path / "db.db", "import", str(tmp_path / "nope.ndjson"))
    assert (
        result.exit_code == 66
        and "nope.ndjson" in result.stderr
        and "vpo-stats export" in result.stderr
    )


def test_import_from_standard_input(source: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs, _ = source
    dump = invoke(runner, db, "export").stdout_bytes
    result = invoke(runner, tmp_path / "piped.db", "import", "-", input=dump)
    assert result.exit_code == 0, result.output
    assert f"{len(runs)} imported" in result.stdout and "standard input" in result.stdout


def test_export_output_is_replaced_only_when_complete(
    source: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs, _ = source
    target = tmp_path / "out.ndjson"
    target.write_text("old contents\n")
    result = invoke(runner, db, "export", "-o", str(target))
    assert result.exit_code == 0 and f"Exported {len(runs)} runs to {target}." in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.ndjson"]
    itself = invoke(runner, db, "export", "-o", str(db))
    assert itself.exit_code == 2 and "'--output'" in itself.stderr
    assert len(read_raw(db)) == len(runs)
    nowhere = invoke(runner, db, "export", "-o", str(tmp_path / "no" / "dir.ndjson"))
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.stderr


@pytest.mark.parametrize(
    "args",
    [["export"], ["recent", "--limit", "1000", "--format", "json"]],
)
def test_output_into_a_closed_pipe_is_quiet(source: tuple, args: list[str]) -> None:
    """`vpo-stats ... | head -1`: no traceback, no error, when the reader stops early."""
    db, _, _ = source
    proc = subprocess.Popen(
        [vpo_stats_script(), "--db", str(db), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert first.strip()
    assert b"Traceback" not in err and b"Error" not in err, err
    assert proc.returncode == 0


def test_import_shows_progress_on_a_terminal(source: tuple, tmp_path: Path) -> None:
    db, runs, _ = source
    dump = tmp_path / "all.ndjson"
    subprocess.run([vpo_stats_script(), "--db", str(db), "export", "-o", str(dump)], check=True)
    main, secondary = pty.openpty()
    done = subprocess.run(
        [vpo_stats_script(), "--db", str(tmp_path / "tty.db"), "import", str(dump)],
        stderr=secondary,
        stdout=subprocess.PIPE,
        timeout=60,
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert done.returncode == 0
    assert b"\rimported " in shown and f"of {len(runs)} runs read".encode() in shown
    assert b"\r" not in done.stdout  # the counter never goes to standard output


_MEASURED = """
import re, sys
from vpo_stats_plugin.cli import main
try:
    main(sys.argv[1:])
finally:
    status = open("/proc/self/status").read()
    print("peak", re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
"""


def _peak_rss(*args: str) -> int:
    """The peak resident memory (KiB) of one `vpo-stats` run, in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1].split()[1])


def test_export_and_import_run_in_constant_memory(tmp_path: Path) -> None:
    """Four times the runs, the same peak memory: nothing holds the whole history.

    Holding every run would cost several KiB a run (tens of MiB here); streaming costs one
    chunk of runs, whatever their number. Each measure is a process of its own. An import
    also lets SQLite cache pages of the database it writes, up to IMPORT_CACHE_KIB: that much
    more is allowed, and no more than the database grew.
    """
    runs = make_history(datetime.now(UTC), count=3200, seed=8)
    db = tmp_path / "big.db"
    import_runs(db, runs)
    quarter = runs[3 * len(runs) // 4]["started_at"]  # runs are oldest first
    peaks = {}
    for name, args in (("quarter", ["--since", quarter]), ("all", [])):
        dump = tmp_path / f"{name}.ndjson"
        exported = _peak_rss("--db", str(db), "export", "-o", str(dump), *args)
        fresh = tmp_path / f"{name}.db"
        imported = _peak_rss("--db", str(fresh), "import", "--batch-size", "200", str(dump))
        database = fresh.stat().st_size // 1024
        peaks[name] = (exported, imported, dump.stat().st_size // 1024, database)
    small, large = peaks["quarter"], peaks["all"]
    assert large[2] - small[2] > 3000, peaks  # KiB more to write and read
    assert large[0] - small[0] < 2000, peaks
    cached = min(large[3] - small[3], IMPORT_CACHE_KIB)
    assert large[1] - small[1] < 2000 + cached, peaks


# ------------------------------------------------- where -o writes: FIFOs, devices, symlinks


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    db = tmp_path / "small.db"
    runs = make_history(datetime.now(UTC), count=30, seed=3)
    import_runs(db, runs)
    return db, runs


def test_export_writes_through_a_fifo(small: tuple, tmp_path: Path) -> None:
    db, runs = small
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    done = subprocess.run(
        [vpo_stats_script(), "--db", str(db), "export", "-o", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    received, _ = reader.communicate(timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in received.splitlines()] == [r["id"] for r in runs]
    assert fifo.is_fifo()  # still the FIFO, not a file put in its place
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("pipe.")]


def test_export_into_a_full_device_is_a_clean_error(small: tuple, tmp_path: Path) -> None:
    """A character device (here a node of /dev/full's own numbers) is written, not replaced;
    its "no space" is an error naming it, with no traceback."""
    db, _ = small
    full = tmp_path / "full"
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("making a device node needs root")
    done = subprocess.run(
        [vpo_stats_script(), "--db", str(db), "export", "-o", str(full)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"cannot write {full}: No space left on device" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert full.is_char_device()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_export_follows_symlinks(small: tuple, runner: Any, tmp_path: Path) -> None:
    db, runs = small
    (tmp_path / "real.ndjson").write_text("old\n")
    (tmp_path / "link").symlink_to("real.ndjson")
    result = invoke(runner, db, "export", "-o", str(tmp_path / "link"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link").is_symlink()  # the link stays; its target is the export
    assert len((tmp_path / "real.ndjson").read_text().splitlines()) == len(runs)
    # a dangling link: the file it names is made
    (tmp_path / "dangling").symlink_to("new.ndjson")
    result = invoke(runner, db, "export", "-o", str(tmp_path / "dangling"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dangling").is_symlink()
    assert len((tmp_path / "new.ndjson").read_text().splitlines()) == len(runs)
    # one into a directory that does not exist: said so, nothing made
    (tmp_path / "nowhere").symlink_to(tmp_path / "no" / "dir" / "x.ndjson")
    result = invoke(runner, db, "export", "-o", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert f"the directory {tmp_path / 'no' / 'dir'} does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


def test_export_leaves_an_unrelated_partial_file_alone(
    small: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs = small
    theirs = tmp_path / "out.ndjson.partial"
    theirs.write_text("someone else's download\n")
    result = invoke(runner, db, "export", "-o", str(tmp_path / "out.ndjson"))
    assert result.exit_code == 0, result.output
    assert theirs.read_text() == "someone else's download\n"
    assert len((tmp_path / "out.ndjson").read_text().splitlines()) == len(runs)
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out"))
    assert names == ["out.ndjson", "out.ndjson.partial"]


def test_export_keeps_the_permissions_of_the_file_it_replaces(
    small: tuple, runner: Any, tmp_path: Path
) -> None:
    db, runs = small
    private = tmp_path / "private.ndjson"
    private.write_text("old\n")
    private.chmod(0o600)
    result = invoke(runner, db, "export", "-o", str(private))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert len(private.read_text().splitlines()) == len(runs)


# ----------------------------------------------------------------- import: lines that are bad


def _line(run: dict[str, Any]) -> str:
    return json.dumps(run)


def test_a_line_nested_too_deeply_is_skipped_and_the_rest_imported(
    runner: Any, tmp_path: Path
) -> None:
    runs = make_history(datetime.now(UTC), count=4, seed=31)[:4]
    deep = dict(runs[1], id=str(uuid.uuid4()))
    text = _line(deep)[:-1] + ', "x": ' + "[" * 1000 + "]" * 1000 + "}"  # past json's limit
    # decodable, but deeper than a stored value may be (the recorder keeps 32 levels)
    nested = dict(runs[2], id=str(uuid.uuid4()))
    value: Any = 1
    for _ in range(100):
        value = {"a": value}
    nested["actions"] = [{"type": "remux", "success": True, "before": value}]
    lines = [_line(runs[0]), text, _line(nested), _line(runs[1]), _line(runs[2]), _line(runs[3])]
    dump = tmp_path / "deep.ndjson"
    dump.write_text("\n".join(lines) + "\n")
    db = tmp_path / "deep.db"
    result = invoke(runner, db, "import", str(dump))
    assert result.exit_code == 1
    assert "skipped line 2: nested too deeply" in result.stderr
    assert "skipped line 3: actions[1].before is nested more than 32 levels deep" in result.stderr
    assert "4 imported" in result.stdout
    assert sorted(r["id"] for r in read_raw(db)) == sorted(r["id"] for r in runs)
    # the same in a CSV's JSON column
    rows = list(csv.DictReader(io.StringIO(invoke(runner, db, "export", "--format", "csv").stdout)))
    rows[0]["actions"] = "[" * 1000 + "]" * 1000
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (tmp_path / "deep.csv").write_text(out.getvalue())
    result = invoke(runner, tmp_path / "csv.db", "import", str(tmp_path / "deep.csv"))
    assert result.exit_code == 1 and "skipped line 2: actions: nested too deeply" in result.stderr
    assert "3 imported" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "not-a-uuid"}, "line 2: id 'not-a-uuid' is not a UUID"),
        ({"id": "6f1c2d3e00004000800000000000000a"}, "is not a UUID"),
        ({"id": "{6f1c2d3e-0000-4000-8000-00000000000a}"}, "is not a UUID"),
        (
            {"started_at": "2026-03-01T10:00:00Z", "finished_at": "2026-03-01T09:59:59Z"},
            "line 2: finished_at 2026-03-01T09:59:59.000000Z is earlier than started_at "
            "2026-03-01T10:00:00.000000Z",
        ),
        (  # the same instant in two offsets is not earlier
            {"started_at": "2026-03-01T10:00:00+02:00", "finished_at": "2026-03-01T08:00:00Z"},
            None,
        ),
    ],
)
def test_import_checks_the_id_and_the_order_of_times(
    change: dict[str, Any], message: str | None, runner: Any, tmp_path: Path
) -> None:
    runs = make_history(datetime.now(UTC), count=3, seed=41)[:3]
    odd = dict(runs[1], **change)
    dump = tmp_path / "odd.ndjson"
    dump.write_text("\n".join(map(_line, [runs[0], odd, runs[2]])) + "\n")
    db = tmp_path / "odd.db"
    result = invoke(runner, db, "import", str(dump))
    stored = {r["id"] for r in read_raw(db)}
    if message is None:
        assert result.exit_code == 0, result.output
        assert odd["id"] in stored
        return
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert stored == {runs[0]["id"], runs[2]["id"]}
