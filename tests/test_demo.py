"""`vpo-stats demo`: sample media through the reference host into the demo's own database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from history import vpo_stats_script
from media import track_counts
from web_history import get_when_up

from vpo_stats_plugin.cli.demo import demo
from vpo_stats_plugin.samples import DEMO_SPECS, make_sample_media

VPO_STATS = [sys.executable, "-c", "from vpo_stats_plugin.cli import main; main()"]


def run_stats(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*VPO_STATS, *args], capture_output=True, text=True, env=env)


def read_json(db: Path, *args: str) -> dict:
    done = run_stats("--db", str(db), *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose home is in tmp_path and who set no stats database."""
    values = {k: v for k, v in os.environ.items() if not k.startswith("VPO_STATS_")}
    return {**values, "HOME": str(tmp_path / "home")}


def test_help() -> None:
    result = CliRunner().invoke(demo, ["--help"])
    assert result.exit_code == 0
    assert "--dir" in result.output and "~/.vpo/demo" in result.output
    done = subprocess.run([vpo_stats_script(), "demo", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage: vpo-stats demo" in done.stdout


def test_sample_media_is_varied_and_real(tmp_path: Path) -> None:
    paths = make_sample_media(tmp_path, 7, size="64x48", duration=1)
    assert [p.name for p in paths][:2] == ["01-already-clean.mkv", "02-multilingual.mkv"]
    assert paths[6].name == "07-already-clean.mkv"
    many = track_counts(paths[5])
    assert many == {"video": 1, "audio": 6, "subtitle": 8, "attachment": 2}
    assert track_counts(paths[3])["subtitle"] == 1 and paths[3].suffix == ".mp4"
    assert len(DEMO_SPECS) == 6


def test_demo_end_to_end(tmp_path: Path, env: dict[str, str]) -> None:
    directory = tmp_path / "demo"
    started = time.monotonic()
    done = run_stats("demo", "--dir", str(directory), "--files", "4", env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"Demo directory: {directory}" in out
    assert out.count("  made ") == 4 and out.count(" ... ok: ") == 4
    assert "http://127.0.0.1:8321/stats/" in out and f"--db {directory / 'stats.db'} recent" in out
    assert elapsed < 30, f"the demo took {elapsed:.1f} s"

    db = directory / "stats.db"
    runs = read_json(db, "recent")["runs"]
    assert len(runs) == 4 and {r["status"] for r in runs} == {"succeeded"}
    assert {r["policy"] for r in runs} == {"english-remux", "english-h264"}
    for run in runs:
        source = Path(run["path"])
        output = directory / "output" / f"{source.stem}.mkv"
        assert source.parent == directory / "media" and run["output_path"] == str(output)
        assert run["size_before_bytes"] == source.stat().st_size
        assert run["size_after_bytes"] == output.stat().st_size
        assert run["tracks_before"] == track_counts(source)
        assert run["tracks_after"] == track_counts(output)
    summary = read_json(db, "summary")
    assert summary["runs"] == 4
    assert summary["saved_bytes"] == sum(r["saved_bytes"] for r in runs) > 0
    assert summary["videos_transcoded"] == 1  # 02-multilingual is mpeg4 under english-h264
    assert not (tmp_path / "home" / ".vpo" / "stats.db").exists()


def test_default_directory_and_reset(tmp_path: Path, env: dict[str, str]) -> None:
    home_demo = tmp_path / "home" / ".vpo" / "demo"
    first = run_stats("demo", "--files", "1", env=env)
    assert first.returncode == 0, first.stderr
    assert f"Demo directory: {home_demo} (change it with --dir)" in first.stdout
    second = run_stats("demo", "--files", "1", env=env)
    assert "includes the runs of earlier demos" in second.stdout
    assert read_json(home_demo / "stats.db", "summary")["runs"] == 2
    third = run_stats("demo", "--files", "1", "--reset", env=env)
    assert third.returncode == 0 and "earlier demos" not in third.stdout
    assert read_json(home_demo / "stats.db", "summary")["runs"] == 1


def test_demo_serve_until_interrupted(tmp_path: Path, env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["demo", "--dir", str(tmp_path / "d"), "--files", "2", "--serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*VPO_STATS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        summary = json.loads(get_when_up(f"http://127.0.0.1:{port}/stats/api/summary", timeout=30))
        assert summary["runs"] == 2 and summary["succeeded"] == 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/stats/" in out


def test_demo_without_ffmpeg_says_what_to_do(tmp_path: Path, env: dict[str, str]) -> None:
    done = run_stats("demo", "--dir", str(tmp_path / "d"), env={**env, "PATH": str(tmp_path)})
    assert done.returncode == 1
    assert "ffmpeg not found on PATH: install FFmpeg" in done.stderr
    assert not (tmp_path / "d" / "stats.db").exists()


def test_the_suite_runs_the_checkouts_own_script_not_one_on_path() -> None:
    on_path = shutil.which("vpo-stats")
    assert on_path and "decoys" in on_path, "conftest plants a failing vpo-stats first on PATH"
    assert subprocess.run([on_path, "--help"], capture_output=True).returncode == 97
    own = vpo_stats_script()
    assert Path(own).parent == Path(sys.executable).parent
    done = subprocess.run([own, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage: vpo-stats" in done.stdout
