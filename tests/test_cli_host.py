"""The installed `vpo-stats` script and the reference host's `vpo stats`: the same answers,
the same errors, the same exit codes, as real processes on the same database."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from history import import_runs, make_history, vpo_stats_script

STANDALONE = [vpo_stats_script()]
HOSTED = [sys.executable, "-m", "vpo_stats_plugin.refhost", "stats"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "shared.db"
    runs = make_history(datetime.now(timezone.utc), count=120, seed=3)
    import_runs(path, runs)
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_")}
    env.update(HOME=str(home), COLUMNS="100", NO_COLOR="1")
    return env


def both(db: Path, *args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    env = _env(db.parent)
    one = subprocess.run(
        [*STANDALONE, "--db", str(db), *args], env=env, capture_output=True, text=True
    )
    two = subprocess.run([*HOSTED, "--db", str(db), *args], env=env, capture_output=True, text=True)
    return one, two


def _first_run_id(db: Path) -> str:
    done = subprocess.run(
        [*STANDALONE, "--db", str(db), "recent", "--limit", "1", "--format", "json"],
        env=_env(db.parent),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["runs"][0]["id"]


@pytest.mark.parametrize(
    "args",
    [
        ["summary", "--format", "json"],
        ["summary", "--policy", "Anime — 日本語 subs", "--until", "2026-06-30", "--format", "json"],
        ["policies", "--sort", "saved", "--format", "json"],
        ["trend", "--by", "month", "--format", "csv"],
        ["recent", "--status", "failed", "--format", "json"],
        ["status", "--format", "json"],
        ["policies"],
    ],
)
def test_same_answers(db: Path, args: list[str]) -> None:
    one, two = both(db, *args)
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert one.stdout == two.stdout and one.stdout
    if "json" in args:
        json.loads(one.stdout)


def test_same_detail(db: Path) -> None:
    run_id = _first_run_id(db)
    one, two = both(db, "detail", run_id[:8], "--format", "json")
    assert one.returncode == two.returncode == 0
    assert json.loads(one.stdout) == json.loads(two.stdout)
    assert json.loads(one.stdout)["id"] == run_id


@pytest.mark.parametrize(
    "args, code",
    [
        (["summary", "--since", "yesterday"], 2),
        (["recent", "--limit", "0"], 2),
        (["detail", "ffffffff"], 64),
        (["policy", "no such policy"], 64),
        (["import", "/no/such/file.ndjson"], 66),
        (["purge", "--all"], 1),
    ],
)
def test_same_errors(db: Path, args: list[str], code: int) -> None:
    one, two = both(db, *args)
    assert one.returncode == two.returncode == code, (one.stderr, two.stderr)
    assert one.stdout == two.stdout
    # each names the commands as its user types them
    as_hosted = one.stderr.replace("Usage: vpo-stats", "Usage: vpo stats")
    as_hosted = as_hosted.replace("Try 'vpo-stats", "Try 'vpo stats").replace(
        "`vpo-stats ", "`vpo stats "
    )
    assert as_hosted == two.stderr
    assert "vpo-stats" not in two.stderr
    assert "Traceback" not in one.stderr + two.stderr


def test_hints_name_the_command_as_typed(db: Path) -> None:
    one, two = both(db, "detail", "ffffffff")
    assert "`vpo-stats recent` lists run ids" in one.stderr
    assert "`vpo stats recent` lists run ids" in two.stderr


def test_help_of_the_mounted_group(db: Path) -> None:
    one, two = both(db, "--help")
    assert one.returncode == two.returncode == 0
    assert two.stdout.startswith("Usage: vpo stats [OPTIONS] COMMAND [ARGS]...")
    standalone_only = {"serve", "demo"}
    listed = {
        line.split()[0] for line in two.stdout.split("Commands:")[1].splitlines() if line.strip()
    }
    everywhere = {
        line.split()[0] for line in one.stdout.split("Commands:")[1].splitlines() if line.strip()
    }
    assert listed == everywhere - standalone_only


def test_rebuild_hint_names_the_command_as_typed(db: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.db"
    shutil.copy(db, tampered)
    conn = sqlite3.connect(tampered)
    conn.execute("DELETE FROM rollup_paths WHERE path = (SELECT MIN(path) FROM rollup_paths)")
    conn.commit()
    conn.close()
    one, two = both(tampered, "rebuild", "--check")
    assert one.returncode == two.returncode == 1
    assert "1 rollup row differs" in one.stdout and "`vpo-stats rebuild` recomputes" in one.stdout
    assert "`vpo stats rebuild` recomputes" in two.stdout
