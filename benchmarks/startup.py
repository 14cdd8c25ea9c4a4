"""How long `vpo-stats --help` and `vpo-stats summary` take to start, over a bare Python.

    python benchmarks/startup.py            # 21 runs of each, interleaved
    python benchmarks/startup.py -n 51 --db ~/.vpo/stats.db

Each command runs as a fresh process (the installed `vpo-stats` script), round-robin with
`python -c pass` so load on the machine hits all of them alike; the medians are printed with
the overhead over bare Python. It also says which heavy modules (aiohttp, pydantic, the web
code) each command imports: none of them should be. Exits 1 only when a command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 150
HEAVY = ("aiohttp", "pydantic", "vpo_stats_plugin.web", "asyncio")
PROBE = """
import json, sys
from vpo_stats_plugin.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m in heavy)), file=sys.stderr)
"""


def script() -> str:
    """The installed `vpo-stats` of this Python (not a shell shim in front of it)."""
    beside = Path(sys.executable).parent / "vpo-stats"
    if not beside.exists():
        sys.exit(
            f"{beside} is missing: install the package into this environment (pip install -e .)"
        )
    return str(beside)


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        sys.stderr.write(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()}")
        sys.exit(1)
    return elapsed


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    code = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(1)
    return json.loads(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=21, help="runs of each command (default 21)")
    parser.add_argument("--db", type=Path, help="database for summary (default: a fresh one)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = options.db.expanduser() if options.db else home / "stats.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_")}
        env.update(HOME=str(home), VPO_STATS_DATABASE=str(db))
        vpo_stats = script()
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "vpo-stats --help": [vpo_stats, "--help"],
            "vpo-stats summary": [vpo_stats, "summary"],
        }
        if not db.exists():  # readers create no database: make an empty one to read
            from vpo_stats_plugin.store import open_store

            open_store(db).close()
        for cmd in commands.values():  # warm the OS caches
            run_once(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.n):
            for name, cmd in commands.items():
                times[name].append(run_once(cmd, env))
        imports = {
            "vpo-stats --help": heavy_imports(["--help"], env),
            "vpo-stats summary": heavy_imports(["summary"], env),
        }

    bare = statistics.median(times["python -c pass"])
    print(f"start-up, median of {options.n} runs ({sys.executable}, {os.cpu_count()} CPUs)")
    print(f"{'command':<20} {'median':>9} {'min':>9} {'over bare':>10}  heavy imports")
    for name, values in times.items():
        median = statistics.median(values)
        over = "" if name.startswith("python") else f"{median - bare:+8.1f} ms"
        heavy = "" if name.startswith("python") else (", ".join(imports[name]) or "none")
        print(f"{name:<20} {median:7.1f} ms {min(values):7.1f} ms {over:>10}  {heavy}".rstrip())
    worst = max(statistics.median(times[n]) for n in commands if n != "python -c pass") - bare
    verdict = "met" if worst < TARGET_MS else "NOT met"
    print(f"target: under {TARGET_MS} ms over bare Python: {verdict} (worst {worst:.1f} ms)")


if __name__ == "__main__":
    main()
