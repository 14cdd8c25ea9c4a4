"""How vpo-stats costs grow with history: one command, one table, PASS/MISS per target.

    python benchmarks/bench.py                      # 1k (reference), 10k, 100k, 1M runs
    python benchmarks/bench.py --sizes 10k,100k     # quicker
    python benchmarks/bench.py --with-10m           # adds 10M runs (about 18 GB, 30 min to build)

Histories are synthetic (``history.py``: 3 years, 6 policies, 3 nodes, a library of one file
per five runs), written straight into the real schema in large transactions and then given
their rollups by ``Store.rebuild_rollups()``; they are kept in ``benchmarks/results/cache/``
and reused while the generator and the migrations stay the same (``--fresh`` rebuilds them).

Measured, per history size: each aggregate through the query layer (``Store`` methods on a
warm connection; the Prometheus scrape opens its store, as ``GET /metrics`` does) and through the HTTP API of the real aiohttp app on a warm server (one store
opened per request, as the app does), the same answers computed by full scans of the raw rows
(``naive.py``; the answers are also checked equal); then recording cost per file through the
plugin's hooks (before-file, 5 actions, after-file) on an empty and on the largest history,
import throughput, partial hashing of a 10 MB and a 10 GB (sparse) file, ``vpo-stats --help``
start-up over a bare interpreter, and the database size per run. Results also go to
``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import inspect
import json
import math
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import history  # noqa: E402
import naive  # noqa: E402

from vpo_stats_plugin import probe  # noqa: E402
from vpo_stats_plugin.filters import Filters  # noqa: E402
from vpo_stats_plugin.store import Store, importing, open_store  # noqa: E402
from vpo_stats_plugin.store.migrations import MIGRATIONS  # noqa: E402
from vpo_stats_plugin.store.writes import (  # noqa: E402
    INSERT_ACTION,
    INSERT_PHASE,
    INSERT_RUN,
    transaction,
)

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
REFERENCE = "1k"
DEFAULT_SIZES = "10k,100k,1m"
RESULTS = HERE / "results"
CACHE = RESULTS / "cache"
RECORD_FILES = 200
IMPORT_RUNS = 50_000
MIB = 1024 * 1024

# targets (issue 8)
WHOLE_HISTORY = ("summary", "policies", "trend")
TARGET_QUERY_MS = 20.0
TARGET_SPEEDUP = 50.0
TARGET_GROWTH = 2.0
TARGET_RECORD_MS = 2.0
TARGET_IMPORT_RATE = 50_000
TARGET_HASH_RATIO = 1.5

NO_FILTER = Filters()


@dataclass
class Context:
    """What the drill-down questions ask about in one history."""

    policy: str
    path: str
    run_id: str
    filters_30d: Filters
    filters_policy: Filters
    filters_failed: Filters
    database: Any = None  # where a scrape reads: the store's own path when not given


@dataclass
class Query:
    name: str
    ask: Callable[[Store, Context], Any]
    api: Callable[[Context], str] | None = None
    naive: Callable[[sqlite3.Connection, Context], Any] | None = None


QUERIES = [
    Query(
        "summary",
        lambda s, c: s.summary(NO_FILTER),
        lambda c: "api/summary",
        lambda conn, c: naive.summary(conn, NO_FILTER),
    ),
    Query(
        "policies",
        lambda s, c: s.policies(NO_FILTER),
        lambda c: "api/policies",
        lambda conn, c: naive.policies(conn, NO_FILTER),
    ),
    Query(
        "policy NAME",
        lambda s, c: s.policy(c.policy, NO_FILTER),
        lambda c: f"api/policies/{c.policy}",
        lambda conn, c: naive.policy(conn, c.policy, NO_FILTER),
    ),
    Query(
        "trend",
        lambda s, c: s.trend(NO_FILTER),
        lambda c: "api/trend",
        lambda conn, c: naive.trend(conn, NO_FILTER),
    ),
    Query(
        "trend --by month",
        lambda s, c: s.trend(NO_FILTER, by="month"),
        lambda c: "api/trend?by=month",
        lambda conn, c: naive.trend(conn, NO_FILTER, "month"),
    ),
    Query("codecs (dashboard)", lambda s, c: s.codecs(NO_FILTER), lambda c: "api/codecs"),
    Query(
        "summary --since 30d",
        lambda s, c: s.summary(c.filters_30d),
        lambda c: "api/summary?since=30d",
    ),
    Query(
        "summary --policy NAME",
        lambda s, c: s.summary(c.filters_policy),
        lambda c: f"api/summary?policy={c.policy}",
    ),
    Query(
        "summary --status failed",
        lambda s, c: s.summary(c.filters_failed),
        lambda c: "api/summary?status=failed",
    ),
    Query(
        "trend --policy NAME",
        lambda s, c: s.trend(c.filters_policy),
        lambda c: f"api/trend?policy={c.policy}",
    ),
    Query("recent", lambda s, c: s.recent(NO_FILTER), lambda c: "api/recent"),
    Query(
        "recent --status failed",
        lambda s, c: s.recent(c.filters_failed),
        lambda c: "api/recent?status=failed",
    ),
    Query(
        "file PATH",
        lambda s, c: s.file_runs(c.path, NO_FILTER),
        lambda c: f"api/files?path={c.path}",
    ),
    Query("detail ID", lambda s, c: s.run(c.run_id[:8]), lambda c: f"api/runs/{c.run_id[:8]}"),
    Query("status", lambda s, c: s.status()),
    Query("metrics (scrape)", lambda s, c: scrape(c.database or s.path), lambda c: "metrics"),
]
SCRAPE = "metrics (scrape)"
_EXPORTERS: dict[Any, Any] = {}


def scrape(path: Path | str) -> bytes:
    """One Prometheus scrape as ``GET /metrics`` makes it: a store opened, the exposition
    written by prometheus-client from the app's own registry."""
    from vpo_stats_plugin.web.metrics import MetricsExporter
    from vpo_stats_plugin.web.readers import Readers

    exporter = _EXPORTERS.setdefault(path, MetricsExporter(Readers(path, {})))
    return exporter.exposition("")[0]


# --- timing -----------------------------------------------------------------------------------


def sample(
    fn: Callable[[], Any], *, budget_s: float = 1.5, least: int = 7, most: int = 60, warm: int = 2
) -> list[float]:
    """Milliseconds of repeated calls of ``fn`` after ``warm`` unmeasured ones."""
    for _ in range(warm):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < most and (len(times) < least or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def summarize(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median_ms": statistics.median(ordered), "p95_ms": p95, "n": len(ordered)}


def same(a: Any, b: Any) -> bool:
    """Equal answers, floats within rounding (sums added in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0015)
    return a == b


# --- histories ---------------------------------------------------------------------------------


def schema_tag() -> str:
    """Changes whenever a migration does (an unreleased one may still be edited)."""
    text = "\n".join(f"{name}\n{inspect.getsource(fn)}" for name, fn in MIGRATIONS)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def history_db(label: str, fresh: bool) -> Path:
    """The cached history of ``label`` runs, built when missing or stale."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"history-{label}-g{history.GENERATOR_VERSION}-s{schema_tag()}.db"
    if path.exists() and not fresh:
        return path
    for old in CACHE.glob(f"history-{label}-*"):
        old.unlink()
    runs = SIZES[label]
    say(f"building a history of {runs:,} runs in {path.name} ...")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        say(f"  {done:,}/{total:,} runs written ({time.perf_counter() - started:.0f} s)")

    history.build(path, runs, progress=progress if runs >= 500_000 else None)
    say(f"  built in {time.perf_counter() - started:.0f} s")
    return path


def context(store: Store) -> Context:
    conn = store.conn
    top = store.policies(NO_FILTER)["policies"][0]["policy"]
    path = conn.execute("SELECT path FROM rollup_paths ORDER BY runs DESC LIMIT 1").fetchone()[0]
    run_id = conn.execute(
        "SELECT id FROM runs WHERE status = 'failed' ORDER BY started_at DESC LIMIT 1"
    ).fetchone()[0]
    return Context(
        policy=top,
        path=path,
        run_id=run_id,
        filters_30d=Filters.parse(since="30d"),
        filters_policy=Filters.parse(policy=top),
        filters_failed=Filters.parse(status="failed"),
    )


# --- the measurements ---------------------------------------------------------------------------


def measure_queries(path: Path, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"query": {}, "naive": {}, "equal": {}}
    with open_store(path) as store:
        ctx = context(store)
        for q in QUERIES:
            out["query"][q.name] = summarize(sample(lambda q=q: q.ask(store, ctx)))
        for q in QUERIES:
            if q.naive is None:
                continue
            answer = q.ask(store, ctx)
            baseline = q.naive(store.conn, ctx)
            out["equal"][q.name] = same(answer, baseline)
            if not out["equal"][q.name]:
                say(f"  !! {q.name}: the rollup answer differs from the full scan")
            slow = runs >= 1_000_000
            out["naive"][q.name] = summarize(
                sample(
                    lambda q=q: q.naive(store.conn, ctx),
                    budget_s=0 if slow else 1.0,
                    least=3 if slow else 5,
                    warm=1,
                )
            )
    out["context"] = {"policy": ctx.policy, "path": ctx.path, "run_id": ctx.run_id}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def http_times(base: str, paths: dict[str, str], budget_s: float = 1.5) -> dict[str, Any]:
    """Median and p95 of each GET, on one keep-alive session, once the server answers."""
    import aiohttp

    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while True:
            try:
                async with session.get(base + "api/summary") as response:
                    if response.status == 200:
                        await response.read()
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not answer within 60 s")
            await asyncio.sleep(0.2)
        for name, path in paths.items():
            times: list[float] = []

            async def once(path: str = path) -> None:
                async with session.get(base + path) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"GET {path} answered {response.status}")

            for _ in range(2):
                await once()
            start = time.perf_counter()
            while len(times) < 60 and (len(times) < 7 or time.perf_counter() - start < budget_s):
                t0 = time.perf_counter()
                await once()
                times.append((time.perf_counter() - t0) * 1000)
            results[name] = summarize(times)
    return results


@contextlib.contextmanager
def serving(database: Path | str) -> Iterator[str]:
    """The real app (``server.py``) on a free loopback port over ``database``; its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), str(database), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}/stats/"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def measure_http(path: Path, ctx: dict[str, str]) -> dict[str, Any]:
    from urllib.parse import quote

    c = Context(
        policy=ctx["policy"],
        path=quote(ctx["path"]),
        run_id=ctx["run_id"],
        filters_30d=NO_FILTER,
        filters_policy=NO_FILTER,
        filters_failed=NO_FILTER,
    )
    paths = {q.name: q.api(c) for q in QUERIES if q.api is not None}
    with serving(path) as base:
        return asyncio.run(http_times(base, paths))


def measure_recording(
    db: Path | str, media: Path, hash_mode: str, files: int = RECORD_FILES
) -> dict[str, Any]:
    env = {**os.environ, "BENCH_HASH": hash_mode}
    done = subprocess.run(
        [sys.executable, str(HERE / "record.py"), str(db), str(files), str(media)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    if data["errors"] or data["pending"]:
        say(f"  !! recording reported {data['errors']} errors, {data['pending']} pending")
    with open_store(db) as store:  # leave the cached history as it was
        store.purge(Filters.parse(node="bench-recorder"), dry_run=False)
    return summarize(data["ms"])


def measure_import() -> dict[str, Any]:
    runs = list(history.Generator(IMPORT_RUNS, seed=7).export_runs())
    with tempfile.TemporaryDirectory() as scratch, open_store(Path(scratch) / "i.db") as store:
        t0 = time.perf_counter()
        counts = store.import_runs(runs)
        seconds = time.perf_counter() - t0
    assert counts["imported"] == IMPORT_RUNS, counts
    return {
        "runs": IMPORT_RUNS,
        "seconds": seconds,
        "runs_per_s": IMPORT_RUNS / seconds,
        **import_floor(runs),
    }


def import_floor(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The two halves of an import that no schema tuning removes, each alone: checking the runs
    into rows (in Python), and binding those rows into tables with no index, key or rollup."""
    gc.disable()  # as import_runs does
    try:
        t0 = time.perf_counter()
        prepared = [importing.run_rows(run) for run in runs]
        checking = time.perf_counter() - t0
    finally:
        gc.enable()
    with tempfile.TemporaryDirectory() as scratch, open_store(Path(scratch) / "f.db") as store:
        conn = store.conn
        for table in ("runs", "actions", "phases"):  # same columns; no index, key or trigger
            conn.execute(f"CREATE TABLE bare_{table} AS SELECT * FROM {table} WHERE 0")
        t0 = time.perf_counter()
        for start in range(0, len(prepared), 5000):
            batch = prepared[start : start + 5000]
            with transaction(conn):
                conn.executemany(
                    INSERT_RUN.replace("runs", "bare_runs", 1), [r for r, _, _ in batch]
                )
                conn.executemany(
                    INSERT_ACTION.replace("actions", "bare_actions", 1),
                    [a for _, actions, _ in batch for a in actions],
                )
                conn.executemany(
                    INSERT_PHASE.replace("phases", "bare_phases", 1),
                    [p for _, _, phases in batch for p in phases],
                )
        binding = time.perf_counter() - t0
    values = sum(len(r) + sum(map(len, a)) + sum(map(len, p)) for r, a, p in prepared)
    return {
        "checking_runs_per_s": len(runs) / checking,
        "binding_runs_per_s": len(runs) / binding,
        "values_per_run": values / len(runs),
    }


def measure_hash(media: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=RESULTS) as scratch:
        sparse = Path(scratch) / "sparse-10g.bin"
        with sparse.open("wb") as handle:
            handle.truncate(10 * 1024**3)
        out = {}
        for label, target in (("10 MB", media), ("10 GB sparse", sparse)):
            out[label] = summarize(
                sample(lambda t=target: probe.partial_hash(t), least=30, budget_s=1)
            )
    return out


def measure_startup() -> dict[str, Any]:
    # the script of this interpreter's environment: another one on PATH (a pyenv shim, say)
    # would time a different installation
    script = str(Path(sys.executable).parent / "vpo-stats")
    if not Path(script).exists():
        sys.exit(
            f"{script} is missing: install the package into this environment (pip install -e .)"
        )
    commands = {
        "bare interpreter": [sys.executable, "-c", "pass"],
        "vpo-stats --help": [script, "--help"],
    }
    out = {}
    for label, command in commands.items():

        def run(command: list[str] = command) -> None:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

        out[label] = summarize(sample(run, least=10, budget_s=3, warm=2))
    out["over bare"] = {
        "median_ms": out["vpo-stats --help"]["median_ms"] - out["bare interpreter"]["median_ms"]
    }
    return out


def db_size(path: Path, runs: int) -> dict[str, Any]:
    """Bytes in use (pages minus free ones; the file may keep free pages after a change)."""
    conn = sqlite3.connect(path)
    try:
        pages, free, size = (
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
    finally:
        conn.close()
    used = (pages - free) * size
    return {"bytes": used, "bytes_per_run": used / runs}


# --- the table ----------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def cell(m: dict[str, float] | None) -> str:
    return "-" if m is None else f"{ms(m['median_ms'])} / {ms(m['p95_ms'])}"


def table(results: dict[str, Any]) -> str:
    labels = results["sizes"]
    per = results["per_size"]
    head = ["", *(f"{SIZES[label]:,} runs" for label in labels)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def row(name: str, cells: list[str]) -> None:
        lines.append("| " + " | ".join([name, *cells]) + " |")

    row("**query layer**, median / p95 ms", [""] * len(labels))
    for q in QUERIES:
        row(q.name, [cell(per[label]["query"].get(q.name)) for label in labels])
    row("**naive full scan**, median / p95 ms", [""] * len(labels))
    for q in QUERIES:
        if q.naive is None:
            continue
        row(q.name, [cell(per[label]["naive"].get(q.name)) for label in labels])
    row("**speed-up over the scan** (medians)", [""] * len(labels))
    for q in QUERIES:
        if q.naive is None:
            continue
        cells = []
        for label in labels:
            fast, slow = per[label]["query"][q.name], per[label]["naive"][q.name]
            same_answer = "" if per[label]["equal"][q.name] else " (answers differ!)"
            cells.append(f"{slow['median_ms'] / fast['median_ms']:.0f}x{same_answer}")
        row(q.name, cells)
    row("**HTTP API, warm server**, median / p95 ms", [""] * len(labels))
    for q in QUERIES:
        if q.api is None:
            continue
        row(
            f"GET /stats/{q.api(_DUMMY)}",
            [cell(per[label]["http"].get(q.name)) for label in labels],
        )
    row(
        "database size per run",
        [f"{per[label]['size']['bytes_per_run']:,.0f} B" for label in labels],
    )
    lines.append("")
    other = results["other"]
    lines += [
        "| other measure | median / p95 |",
        "|---|---|",
        f"| recording one file (before + 5 actions + after), hash partial, empty database | {cell(other['record']['empty, partial'])} ms |",
        f"| same, on the {other['record']['history']} history | {cell(other['record']['history, partial'])} ms |",
        f"| recording one file, hash off (the database's share), empty database | {cell(other['record']['empty, off'])} ms |",
        f"| same, on the {other['record']['history']} history | {cell(other['record']['history, off'])} ms |",
        f"| import ({other['import']['runs']:,} runs with actions and phases, `Store.import_runs`) | {other['import']['runs_per_s']:,.0f} runs/s |",
        f"| import's floor, part 1: checking the runs into rows alone (Python) | {other['import']['checking_runs_per_s']:,.0f} runs/s |",
        f"| import's floor, part 2: binding those rows ({other['import']['values_per_run']:.0f} values a run) into tables with no index, key or rollup | {other['import']['binding_runs_per_s']:,.0f} runs/s |",
        f"| partial hash, 10 MB file | {cell(other['hash']['10 MB'])} ms |",
        f"| partial hash, 10 GB sparse file | {cell(other['hash']['10 GB sparse'])} ms |",
        f"| `python -c pass` | {cell(other['startup']['bare interpreter'])} ms |",
        f"| `vpo-stats --help` | {cell(other['startup']['vpo-stats --help'])} ms |",
    ]
    return "\n".join(lines)


class _Dummy:
    policy = "NAME"
    path = "PATH"
    run_id = "ID"


_DUMMY: Any = _Dummy()


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    labels = results["sizes"]
    per = results["per_size"]
    big = max((lb for lb in labels if lb != REFERENCE), key=lambda lb: SIZES[lb])
    size = f"{SIZES[big]:,} runs"
    checks: list[dict[str, Any]] = []

    def check(what: str, value: str, ok: bool) -> None:
        checks.append({"target": what, "measured": value, "result": "PASS" if ok else "MISS"})

    for name in WHOLE_HISTORY:
        fast = per[big]["query"][name]["median_ms"]
        check(
            f"{name}, whole history, {size}: < {TARGET_QUERY_MS:.0f} ms",
            f"{ms(fast)} ms",
            fast < TARGET_QUERY_MS,
        )
    for name in WHOLE_HISTORY:
        ratio = per[big]["naive"][name]["median_ms"] / per[big]["query"][name]["median_ms"]
        check(
            f"{name}, {size}: >= {TARGET_SPEEDUP:.0f}x the naive scan, same answer",
            f"{ratio:.0f}x" + ("" if per[big]["equal"][name] else ", answers differ"),
            ratio >= TARGET_SPEEDUP and per[big]["equal"][name],
        )
    for name in WHOLE_HISTORY:
        growth = per[big]["query"][name]["median_ms"] / per[REFERENCE]["query"][name]["median_ms"]
        check(
            f"{name}, {size}: within {TARGET_GROWTH:.0f}x of {SIZES[REFERENCE]:,} runs",
            f"{growth:.2f}x",
            growth <= TARGET_GROWTH,
        )
    scrape_ms = per[big]["query"][SCRAPE]["median_ms"]
    check(
        f"metrics scrape, {size}: < {TARGET_QUERY_MS:.0f} ms",
        f"{ms(scrape_ms)} ms",
        scrape_ms < TARGET_QUERY_MS,
    )
    growth = scrape_ms / per[REFERENCE]["query"][SCRAPE]["median_ms"]
    check(
        f"metrics scrape, {size}: within {TARGET_GROWTH:.0f}x of {SIZES[REFERENCE]:,} runs",
        f"{growth:.2f}x",
        growth <= TARGET_GROWTH,
    )
    rec = results["other"]["record"]
    for where in ("empty", "history"):
        value = rec[f"{where}, partial"]["median_ms"]
        label = "empty database" if where == "empty" else f"{rec['history']} history"
        check(
            f"recording a file, hash partial, {label}: < {TARGET_RECORD_MS:.0f} ms",
            f"{ms(value)} ms",
            value < TARGET_RECORD_MS,
        )
    growth = rec["history, off"]["median_ms"] / rec["empty, off"]["median_ms"]
    check(
        f"recording cost does not grow with history (hash off, {rec['history']} vs empty, <= 1.5x)",
        f"{growth:.2f}x",
        growth <= 1.5,
    )
    rate = results["other"]["import"]["runs_per_s"]
    check(
        f"import >= {TARGET_IMPORT_RATE:,} runs/s",
        f"{rate:,.0f} runs/s",
        rate >= TARGET_IMPORT_RATE,
    )
    h = results["other"]["hash"]
    ratio = h["10 GB sparse"]["median_ms"] / h["10 MB"]["median_ms"]
    check(
        f"partial hash: 10 GB costs what 10 MB does (within {TARGET_HASH_RATIO}x)",
        f"{ratio:.2f}x",
        ratio <= TARGET_HASH_RATIO,
    )
    return checks


def targets_table(checks: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {c['target']} | {c['measured']} | **{c['result']}** |" for c in checks]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"default {DEFAULT_SIZES}; of {', '.join(SIZES)}"
    )
    parser.add_argument("--with-10m", action="store_true", help="add a 10M-run history")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached histories")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP rows")
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgresql", "both"),
        help="compare the store engines instead (engines.py): 1k and 1M runs, side by side",
    )
    parser.add_argument(
        "--pg-url",
        help="with --engine: a PostgreSQL database to use (its role creates schemas there) "
        "instead of a throwaway server of the benchmark's own",
    )
    args = parser.parse_args(argv)
    labels = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    if args.with_10m and "10m" not in labels:
        labels.append("10m")
    unknown = [lb for lb in labels if lb not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}: use {', '.join(SIZES)}")
    labels = sorted({REFERENCE, *labels}, key=lambda lb: SIZES[lb])
    if len(labels) < 2:
        parser.error("give at least one size besides the 1k reference")
    if args.engine:  # the 1k reference against the largest size given (1M by default)
        import engines

        return engines.main(args.engine, labels[-1], args.pg_url, args.fresh, args.no_http)
    if args.pg_url:
        parser.error("--pg-url goes with --engine postgresql or both")
    RESULTS.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "sizes": labels,
        "per_size": {},
        "other": {},
    }
    paths = {}
    for label in labels:
        paths[label] = path = history_db(label, args.fresh)
        runs = SIZES[label]
        say(f"measuring {runs:,} runs ...")
        per = measure_queries(path, runs)
        per["http"] = {} if args.no_http else measure_http(path, per["context"])
        per["size"] = db_size(path, runs)
        results["per_size"][label] = per

    say("measuring recording, import, hashing, start-up ...")
    biggest = labels[-1]
    with tempfile.TemporaryDirectory(dir=RESULTS) as scratch:
        media = Path(scratch) / "media-10mb.bin"
        media.write_bytes(os.urandom(10 * MIB))
        record: dict[str, Any] = {"history": f"{SIZES[biggest]:,}-run"}
        for mode in ("partial", "off"):
            empty = Path(scratch) / f"empty-{mode}.db"
            record[f"empty, {mode}"] = measure_recording(empty, media, mode)
            record[f"history, {mode}"] = measure_recording(paths[biggest], media, mode)
        results["other"]["record"] = record
        results["other"]["hash"] = measure_hash(media)
    results["other"]["import"] = measure_import()
    results["other"]["startup"] = measure_startup()

    checks = targets(results)
    results["targets"] = checks
    out = RESULTS / "latest.json"
    out.write_text(json.dumps(results, indent=2) + "\n")

    print(f"vpo-stats benchmark, {results['when']}, {results['machine']}\n")
    print(table(results))
    print()
    print(targets_table(checks))
    print(f"\n(results in {out.relative_to(HERE.parent)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
