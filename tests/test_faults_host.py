"""As a new user would: the reference host's own `process` command on real media, with the
stats database healthy, locked, corrupt or impossible. The processing (what the host prints,
its exit status, the files it writes) is the same as with the plugin switched off, and every
run that could be kept is there."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostproc import cli, hold_lock, host_env
from media import make_media, track_counts

FILES = 3


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("library")
    return [
        make_media(folder / f"film{n}.mkv", audio=("eng", "fra"), subtitles=("eng", "fra", "deu"))
        for n in range(FILES)
    ]


def _process(files: list[Path], out: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the reference host's `process`; answers its exit status and its lines, untimed."""
    command = [sys.executable, "-m", "vpo_stats_plugin.refhost", "process", "--policy", "english"]
    command += ["--keep-audio", "eng", "--keep-subs", "eng", "--output-dir", str(out)]
    done = subprocess.run(
        [*command, *map(str, files)], env=env, capture_output=True, text=True, timeout=120
    )
    lines = [re.sub(r"\d+\.\d+ s\)?", "T", line) for line in done.stdout.splitlines()]
    return done.returncode, [line.replace(str(out), "OUT") for line in lines]


def _outputs(out: Path) -> dict[str, dict[str, int]]:
    return {p.name: track_counts(p) for p in sorted(out.glob("*.mkv"))}


@pytest.fixture(scope="module")
def control(library: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """What the host does with the plugin switched off."""
    out = tmp_path_factory.mktemp("control")
    env = host_env(out / "unused.db", enabled=False)
    code, lines = _process(library, out, env)
    assert code == 0 and len(lines) == FILES + 1 and all("ok:" in line for line in lines[:-1])
    return code, lines, _outputs(out)


def _runs(db: Path, env: dict[str, str]) -> list[dict]:
    done = cli("--db", str(db), "recent", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["runs"]


def test_healthy(library: list[Path], control: tuple, tmp_path: Path) -> None:
    db, out = tmp_path / "stats.db", tmp_path / "out"
    env = host_env(db)
    assert (*_process(library, out, env), _outputs(out)) == control
    runs = _runs(db, env)
    assert [r["status"] for r in runs] == ["succeeded"] * FILES
    assert all(
        r["tracks_after"] == {"video": 1, "audio": 1, "subtitle": 1, "attachment": 0} for r in runs
    )


def test_locked(library: list[Path], control: tuple, tmp_path: Path) -> None:
    db, out = tmp_path / "stats.db", tmp_path / "out"
    env = host_env(db)
    cli("--db", str(db), "status", env=env)  # creates it
    locker = hold_lock(db, 2.0)
    try:
        assert (*_process(library, out, env), _outputs(out)) == control
    finally:
        locker.wait()
    runs = _runs(db, env)
    assert [r["status"] for r in runs] == ["succeeded"] * FILES
    assert sum(1 for r in runs if r["tracks_after"]["audio"] == 1) == FILES


def test_corrupt(library: list[Path], control: tuple, tmp_path: Path) -> None:
    db, out = tmp_path / "stats.db", tmp_path / "out"
    db.write_bytes(bytes(range(256)) * 64)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    env = host_env(db)
    assert (*_process(library, out, env), _outputs(out)) == control
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    done = cli("--db", str(db), "summary", env=env)
    assert done.returncode == 65 and "not a SQLite database" in done.stderr


def test_impossible_path(library: list[Path], control: tuple, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = host_env(Path("/dev/null/stats.db"))
    assert (*_process(library, out, env), _outputs(out)) == control
    done = cli("status", env=env)
    assert done.returncode == 65 and "recording failure(s)" in done.stderr
