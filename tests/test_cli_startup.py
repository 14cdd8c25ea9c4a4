"""Fast start: a host imports the group on every run, and reading commands stay light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("aiohttp", "pydantic", "vpo_stats_plugin.web", "asyncio")
PROBE = """
import json, sys
{body}
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
RUN_MAIN = """
from vpo_stats_plugin.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
"""


def modules_after(body: str, *args: str, home: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_")}
    env.update(HOME=str(home), VPO_STATS_DATABASE=str(home / "stats.db"))
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_importing_the_group_is_light(tmp_path: Path) -> None:
    """What every `vpo ...` run of a host pays: click and the standard library, no store."""
    loaded = modules_after("import vpo_stats_plugin.cli", home=tmp_path)
    assert not loaded & set(HEAVY)
    assert "vpo_stats_plugin.store" not in loaded and "vpo_stats_plugin.config" not in loaded


@pytest.mark.parametrize("args", [["--help"], ["summary"], ["recent", "--format", "json"]])
def test_reading_commands_import_no_web_and_no_pydantic(tmp_path: Path, args: list[str]) -> None:
    from vpo_stats_plugin.store import open_store

    open_store(tmp_path / "stats.db").close()  # something to read (readers create nothing)
    loaded = modules_after(RUN_MAIN, *args, home=tmp_path)
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_the_startup_benchmark_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "startup.py"), "-n", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("vpo-stats --help") and line.endswith("none") for line in lines)
    assert any(line.startswith("vpo-stats summary") and line.endswith("none") for line in lines)
    assert lines[-1].startswith("target: under 150 ms over bare Python:")
