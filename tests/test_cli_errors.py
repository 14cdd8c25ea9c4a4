"""Help on every command, usage errors (exit 2) that name the option, unusable databases (65)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import pytest
from history import import_runs, invoke, json_of, make_history

from vpo_stats_plugin.cli import standalone_group, stats
from vpo_stats_plugin.store import open_store

GROUP = standalone_group()
OURS = ("summary", "policies", "policy", "recent", "file", "detail", "trend", "purge", "export")
OURS += ("import", "status", "path", "backup")


@pytest.mark.parametrize("name", sorted(GROUP.commands))
def test_every_command_has_help_with_an_example(runner: Any, name: str) -> None:
    result = runner.invoke(GROUP, [name, "--help"], prog_name="vpo-stats")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: vpo-stats {name} ")
    assert "Example" in result.stdout and f"vpo-stats {name}" in result.stdout.split("Example")[1]


@pytest.mark.parametrize("name", sorted(stats.commands))
def test_help_in_a_host_names_the_host(runner: Any, name: str) -> None:
    root = click.Group("vpo", commands=[stats])
    result = runner.invoke(root, ["stats", name, "--help"], prog_name="vpo")
    assert result.exit_code == 0 and result.stdout.startswith(f"Usage: vpo stats {name} ")


BAD = [
    (["summary", "--since", "foo"], "'--since'", "'foo'", "ISO-8601"),
    (["summary", "--since", "5 parsecs"], "'--since'", "'5 parsecs'", "7d"),
    (["summary", "--until", "2026-02-30"], "'--until'", "2026-02-30", "ISO-8601"),
    (["summary", "--since", "2026-03-01", "--until", "2026-02-01"], "'--until'", "before", ""),
    (["summary", "--since", "-3d"], "'--since'", "-3d", ""),
    (["summary", "--status", "done"], "'--status'", "'done'", "succeeded"),
    (["summary", "--format", "xml"], "'--format'", "'xml'", "json"),
    (["recent", "--limit", "0"], "'--limit'", "0", "1<=x<=1000"),
    (["recent", "--limit", "1001"], "'--limit'", "1001", "1<=x<=1000"),
    (["recent", "--limit", "ten"], "'--limit'", "'ten'", "integer"),
    (["policies", "--sort", "size"], "'--sort'", "'size'", "saved"),
    (["trend", "--by", "year"], "'--by'", "'year'", "month"),
    (["trend", "--since", "1y", "--until", "9999-99-99"], "'--until'", "9999-99-99", ""),
    (["detail"], "RUN_ID", "Missing argument", ""),
    (["detail", "abc"], "'RUN_ID'", "'abc'", "8 characters"),
    (["file"], "PATH", "Missing argument", ""),
    (["export", "--format", "json"], "'--format'", "'json'", "ndjson"),
    (["import"], "SOURCE", "Missing argument", ""),
    (["import", "--format", "xml", "x.ndjson"], "'--format'", "'xml'", "csv"),
    (["import", "--batch-size", "0", "x.ndjson"], "'--batch-size'", "0", ""),
    (["backup"], "DEST", "Missing argument", ""),
    (["summary", "--frobnicate"], "--frobnicate", "No such option", ""),
    (["nosuchcommand"], "nosuchcommand", "No such command", ""),
]


@pytest.mark.parametrize("args, option, value, accepted", BAD)
def test_bad_usage_is_exit_2_naming_the_option(
    runner: Any, tmp_path: Path, args: list[str], option: str, value: str, accepted: str
) -> None:
    db = tmp_path / "s.db"
    if args == ["detail", "abc"]:  # a short id is judged by looking it up
        open_store(db).close()
    result = invoke(runner, db, *args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert "Usage: vpo-stats" in err and "Try 'vpo-stats" in err
    assert option in err and value in err and accepted in err, err
    assert result.stdout == "" and "Traceback" not in err
    if args != ["detail", "abc"]:  # a short id is judged by looking it up
        assert not db.exists(), "a bad command line touches no database"


def test_bad_usage_in_the_host_is_the_same(runner: Any, tmp_path: Path) -> None:
    root = click.Group("vpo", commands=[stats])
    result = runner.invoke(
        root,
        ["stats", "--db", str(tmp_path / "s.db"), "summary", "--since", "foo"],
        prog_name="vpo",
    )
    assert result.exit_code == 2
    assert "Usage: vpo stats summary" in result.stderr and "'--since'" in result.stderr


@pytest.fixture
def foreign(tmp_path: Path) -> dict[str, Path]:
    """Files that are not usable stats databases, each kept to check nothing touched them."""
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database\n")
    other = tmp_path / "other-app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('ann')")
    conn.commit()
    conn.close()
    corrupt = tmp_path / "corrupt.db"
    import_runs(corrupt, make_history(datetime.now(timezone.utc), count=30))
    data = bytearray(corrupt.read_bytes())
    for offset in range(4096, len(data), 997):  # scribble over every page but the header
        data[offset : offset + 64] = b"\xde\xad\xbe\xef" * 16
    corrupt.write_bytes(bytes(data))
    newer = tmp_path / "newer.db"
    import_runs(newer, [])
    conn = sqlite3.connect(newer)
    conn.execute(
        "INSERT INTO _migrations (name, applied_at) VALUES ('m999_from_the_future', '2030-01-01')"
    )
    conn.commit()
    conn.close()
    return {"text": text, "other": other, "corrupt": corrupt, "newer": newer}


READERS = [
    ["summary"], ["policies"], ["recent"], ["trend"], ["status"], ["export"],
    ["detail", "abcdef12"], ["file", "/x.mkv"], ["policy", "p"], ["purge", "--all", "--dry-run"],
]  # fmt: skip


@pytest.mark.parametrize("kind", ["text", "other", "corrupt", "newer"])
def test_unusable_databases_are_65_and_left_alone(
    runner: Any, foreign: dict[str, Path], kind: str
) -> None:
    path = foreign[kind]
    before = path.read_bytes()
    for args in READERS:
        result = invoke(runner, path, *args)
        if kind == "corrupt" and result.exit_code == 0:
            continue  # a question that never reads a scribbled page can still be answered
        assert result.exit_code == 65, (args, result.exit_code, result.output)
        assert str(path) in result.stderr and "Traceback" not in result.output
        if kind == "newer":
            assert "newer" in result.stderr
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() or kind in ("corrupt", "newer")


def test_a_corrupt_database_is_noticed(runner: Any, foreign: dict[str, Path]) -> None:
    codes = {args[0]: invoke(runner, foreign["corrupt"], *args).exit_code for args in READERS}
    assert 65 in codes.values() and set(codes.values()) <= {0, 64, 65}, codes


def test_db_option_that_is_a_directory(runner: Any, tmp_path: Path) -> None:
    result = invoke(runner, tmp_path, "summary")
    assert result.exit_code == 2 and "--db" in result.stderr and "directory" in result.stderr


# a reading command never creates a database (issue 14, 2.2)
WRITE_NOTHING = [*READERS, ["rebuild", "--check"], ["rebuild"], ["backup", "COPY"]]


def _run_reader(runner: Any, db: Path, args: list[str], tmp_path: Path) -> Any:
    args = [str(tmp_path / "copy.db") if a == "COPY" else a for a in args]
    return invoke(runner, db, *args)


@pytest.mark.parametrize("args", WRITE_NOTHING, ids=lambda a: " ".join(a))
def test_a_mistyped_db_is_66_and_nothing_is_created(
    runner: Any, tmp_path: Path, args: list[str]
) -> None:
    db = tmp_path / "no" / "such" / "dir" / "stats.db"
    result = _run_reader(runner, db, args, tmp_path)
    assert result.exit_code == 66, (result.exit_code, result.output)
    err = " ".join(result.stderr.split())
    assert str(db) in err and "option --db" in err and "typo" in err, err
    assert "`vpo-stats import FILE`" in err and "`vpo-stats import-vpo`" in err, err
    assert not (tmp_path / "no").exists() and not (tmp_path / "copy.db").exists()


def test_the_default_database_not_there_yet_says_nothing_was_recorded(
    runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VPO_STATS_DATABASE")
    result = runner.invoke(GROUP, ["summary"], prog_name="vpo-stats")
    assert result.exit_code == 66, result.output
    err = " ".join(result.stderr.split())
    default = Path.home() / ".vpo" / "stats.db"
    assert err.startswith(
        f"Error: nothing has been recorded yet: there is no stats database at {default}"
    )
    assert "processes files with this plugin" in err and "`vpo-stats import-vpo`" in err, err
    assert not default.parent.exists()


def test_an_empty_file_is_not_turned_into_a_database(runner: Any, tmp_path: Path) -> None:
    """0 bytes (as `touch` leaves), or a SQLite file with no tables: no history yet, exit 66,
    and the file is left as it was."""
    zero = tmp_path / "zero.db"
    zero.touch()
    bare = tmp_path / "bare.db"
    conn = sqlite3.connect(bare)
    conn.execute("PRAGMA user_version = 7")  # a SQLite file, but no tables of ours
    conn.close()
    for path, what in ((zero, "empty file (0 bytes)"), (bare, "empty SQLite database")):
        before = path.read_bytes()
        for args in WRITE_NOTHING:
            result = _run_reader(runner, path, args, tmp_path)
            assert result.exit_code == 66, (args, result.exit_code, result.output)
            assert what in result.stderr and str(path) in result.stderr, result.stderr
        assert path.read_bytes() == before
        assert not (tmp_path / "copy.db").exists()


def test_the_imports_still_create_the_database(runner: Any, tmp_path: Path) -> None:
    runs = make_history(datetime.now(timezone.utc), count=3)
    source = tmp_path / "src.db"
    import_runs(source, runs)
    export = tmp_path / "runs.ndjson"
    export.write_bytes(invoke(runner, source, "export").stdout_bytes)
    db = tmp_path / "new" / "dir" / "stats.db"
    assert invoke(runner, db, "import", str(export)).exit_code == 0
    assert json_of(invoke(runner, db, "summary", "--format", "json"))["runs"] == len(runs)


def test_the_hooks_still_create_the_database_and_its_directories(
    runner: Any, tmp_path: Path
) -> None:
    from hostproc import host_env, run_host

    clip = tmp_path / "clip.mkv"
    clip.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 4096)  # the hooks only size and hash it
    db = tmp_path / "first" / "time" / "stats.db"
    host = run_host({"files": [str(clip)], "actions": 1}, host_env(db))
    assert host.returncode == 0 and host.raised == [] and host.done["errors"] == {}, host.stderr
    assert json_of(invoke(runner, db, "summary", "--format", "json"))["succeeded"] == 1
