"""Both store engines side by side: what ``bench.py --engine sqlite|postgresql|both`` measures.

    python benchmarks/bench.py --engine both             # SQLite and a throwaway PostgreSQL
    python benchmarks/bench.py --engine postgresql --pg-url postgresql://u:pw@host/db

Without ``--pg-url`` a PostgreSQL cluster of its own is started on 127.0.0.1 (Debian's
programs, as the tests do; ``scripts/setup.sh`` installs them) with durable settings (fsync,
synchronous_commit and full_page_writes on) and removed afterwards. Each history lives in a
schema of its own (``vpo_bench_*``, dropped at the end), so ``--pg-url`` needs only a role
that may create schemas in its database.

Histories: the cached SQLite ones of ``bench.py`` (1k and 1M runs); PostgreSQL gets the same
runs by *moving* them, ``vpo-stats import SOURCE`` run as a user would, which is also the
move's measure. Then, per engine and size: each aggregate through the query layer, each
dashboard route over HTTP on the real app (filters included), recording one file through the
hooks on an empty and on the 1M-run database, and 4 host processes recording 250 files each
at once into one database (slowest hook call, runs landed, totals checked against what was
recorded and against ``rebuild --check``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bench
from bench import NO_FILTER, QUERIES, cell, ms, say, summarize

from vpo_stats_plugin.store import open_store

ENGINES = ("sqlite", "postgresql")
ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
REFERENCE = "1k"
NODES = 4
NODE_FILES = 250
RECORD_FILES = 200
# a server as a user would run one: every commit on disk before it is acknowledged
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "'512MB'",
}
SCHEMA_PREFIX = "vpo_bench_"

# targets (issue 15)
TARGET_PG_QUERY_MS = 20.0
TARGET_GROWTH = 2.0
TARGET_ROUTE_MS = 50.0
TARGET_PG_RECORD_MS = 3.0
TARGET_SQLITE_RECORD_MS = bench.TARGET_RECORD_MS  # issue 8's: "unchanged"
TARGET_HOOK_MS = 250.0
TARGET_MOVE_S = 90.0
WHOLE_HISTORY = bench.WHOLE_HISTORY


def routes(ctx: bench.Context, nodes: list[str]) -> dict[str, str]:
    """Every route the dashboard asks, unfiltered and with each filter it offers."""
    policy, node = quote(ctx.policy), quote(nodes[0])
    out = {"/ (the page)": ""}
    filters = {
        "": "",
        "since=30d": "since=30d",
        f"policy={ctx.policy}": f"policy={policy}",
        f"node={nodes[0]}": f"node={node}",
        "status=failed": "status=failed",
    }
    for api in ("summary", "policies", "nodes", "trend", "codecs", "recent"):
        for label, query in filters.items():
            out[f"api/{api}" + (f"?{label}" if label else "")] = f"api/{api}" + (
                f"?{query}" if query else ""
            )
    out["api/trend?by=month"] = "api/trend?by=month"
    out["api/policies/NAME"] = f"api/policies/{policy}"
    out["api/files?path=PATH"] = f"api/files?path={quote(ctx.path)}"
    out["api/runs/ID"] = f"api/runs/{ctx.run_id[:8]}"
    out["metrics"] = "metrics"
    return out


# --- the PostgreSQL side --------------------------------------------------------------------


@contextlib.contextmanager
def postgresql(url: str | None) -> Iterator[tuple[Any, str]]:
    """A function making a new empty schema and answering its URL, and the server's version;
    the schemas made are dropped after."""
    import psycopg

    with contextlib.ExitStack() as stack:
        if url is None:
            sys.path.insert(0, str(bench.HERE.parent / "tests"))
            import pgserver

            say("starting a PostgreSQL server on 127.0.0.1 (durable settings) ...")
            server = stack.enter_context(pgserver.running_server("bench", DURABLE))
            url = server.url()
        admin = stack.enter_context(psycopg.connect(url, autocommit=True))
        made: list[str] = []

        def schema(name: str) -> str:
            full = SCHEMA_PREFIX + name
            _drop_schema(admin, full)
            admin.execute(f'CREATE SCHEMA "{full}"')
            made.append(full)
            joiner = "&" if "?" in url else "?"
            return f"{url}{joiner}options=-csearch_path%3D{full}"

        try:
            yield schema, admin.execute("SHOW server_version").fetchone()[0]
        finally:
            for full in made:
                _drop_schema(admin, full)


def _drop_schema(conn: Any, name: str) -> None:
    conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def move(source: Path, target: str) -> dict[str, Any]:
    """``vpo-stats import SOURCE`` into ``target``, as a user moves a history; timed."""
    script = str(Path(sys.executable).parent / "vpo-stats")
    t0 = time.perf_counter()
    done = subprocess.run(
        [script, "--db", target, "import", str(source)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"the move failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"seconds": seconds, "said": done.stdout.strip().splitlines()[-1:]}


# --- the measures ----------------------------------------------------------------------------


def measure_queries(database: str | Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open_store(database) as store:
        ctx = bench.context(store)
        ctx.database = database
        nodes = [row["node"] for row in store.nodes(NO_FILTER)["nodes"]]
        for q in QUERIES:
            out[q.name] = summarize(bench.sample(lambda q=q: q.ask(store, ctx), budget_s=1.0))
    return {"query": out, "ctx": ctx, "nodes": nodes}


def measure_routes(database: str | Path, ctx: bench.Context, nodes: list[str]) -> dict[str, Any]:
    with bench.serving(database) as base:
        return bench.asyncio.run(bench.http_times(base, routes(ctx, nodes), budget_s=1.0))


def measure_nodes(database: str | Path, scratch: Path) -> dict[str, Any]:
    """4 host processes, one node name each, 250 files each, all at once into ``database``."""
    with open_store(database):  # the schema is there, as on a server set up for its nodes
        pass
    sizes: dict[str, int] = {}
    libraries = []
    for n in range(NODES):
        library = scratch / f"node-{n}"
        library.mkdir()
        for i in range(NODE_FILES):
            file = library / f"title-{i:04d}.mkv"
            file.write_bytes(os.urandom(4096 + 97 * i + 13 * n))
            sizes[str(file)] = file.stat().st_size
        libraries.append(library)
    script = bench.HERE / "record.py"
    t0 = time.perf_counter()
    hosts = [
        subprocess.Popen(
            [sys.executable, str(script), str(database), str(NODE_FILES), str(library)],
            env={**os.environ, "BENCH_NODE": f"bench-node-{n}", "BENCH_WARM": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, library in enumerate(libraries)
    ]
    reports = []
    for host in hosts:
        out, err = host.communicate(timeout=900)
        if host.returncode != 0:
            raise RuntimeError(f"a benchmark host failed ({host.returncode}): {err[-2000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - t0
    with open_store(database) as store:
        summary = store.summary(NO_FILTER)
        per_node = {r["node"]: r["runs"] for r in store.nodes(NO_FILTER)["nodes"]}
        differing = store.rebuild_rollups(check=True)["differing_rows"]
    expected_bytes = sum(sizes.values())
    exact = (
        summary["runs"] == summary["succeeded"] == NODES * NODE_FILES
        and summary["files"] == NODES * NODE_FILES
        and summary["size_before_bytes"] == expected_bytes
        and all(per_node.get(f"bench-node-{n}") == NODE_FILES for n in range(NODES))
        and differing == 0
    )
    return {
        "wall_s": wall,
        "runs": summary["runs"],
        "files": summary["files"],
        "exact": exact,
        "differing_rows": differing,
        "slowest_hook_ms": max(r["slowest_hook_ms"] for r in reports),
        "slowest_hook": max(reports, key=lambda r: r["slowest_hook_ms"])["slowest_hook"],
        "first_file_hook_ms": max(r["first_file_hook_ms"] for r in reports),
        "file_ms": summarize([t for r in reports for t in r["ms"]]),
        "errors": sum(r["errors"] or 0 for r in reports),
        "pending": sum(r["pending"] or 0 for r in reports),
    }


# --- the run ---------------------------------------------------------------------------------


def run(
    engines: list[str], big: str, pg_url: str | None, fresh: bool, no_http: bool
) -> dict[str, Any]:
    sizes = [REFERENCE, big]
    results: dict[str, Any] = {
        "sizes": sizes,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": bench.machine(),
        "engines": engines,
        "per": {},
        "record": {},
        "nodes": {},
        "move": None,
        "routes": [],
    }
    sqlite_dbs = {label: bench.history_db(label, fresh) for label in sizes}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(dir=bench.RESULTS) as tmp:
        scratch = Path(tmp)
        databases: dict[str, dict[str, Any]] = {}
        empty: dict[str, Any] = {}
        if "sqlite" in engines:
            databases["sqlite"] = dict(sqlite_dbs)
            empty["sqlite"] = lambda name: scratch / f"{name}.db"
        if "postgresql" in engines:
            schema, results["postgresql_version"] = stack.enter_context(postgresql(pg_url))
            databases["postgresql"] = {}
            for label in sizes:
                target = schema(label)
                say(f"moving the {bench.SIZES[label]:,}-run SQLite history into PostgreSQL ...")
                moved = move(sqlite_dbs[label], target)
                say(f"  moved in {moved['seconds']:.1f} s")
                if label == big:
                    results["move"] = {"runs": bench.SIZES[label], **moved}
                databases["postgresql"][label] = target
            empty["postgresql"] = schema
        media = scratch / "media-10mb.bin"
        media.write_bytes(os.urandom(10 * bench.MIB))
        for engine in engines:
            for label in sizes:
                db = databases[engine][label]
                say(f"measuring {ENGINE_NAMES[engine]}, {bench.SIZES[label]:,} runs ...")
                per = measure_queries(db)
                ctx, nodes = per.pop("ctx"), per.pop("nodes")
                per["http"] = {} if no_http else measure_routes(db, ctx, nodes)
                results["per"][f"{engine} {label}"] = per
            say(f"measuring recording on {ENGINE_NAMES[engine]} ...")
            results["record"][engine] = {
                "empty": bench.measure_recording(
                    empty[engine]("record-empty"), media, "partial", RECORD_FILES
                ),
                "history": bench.measure_recording(
                    databases[engine][big], media, "partial", RECORD_FILES
                ),
            }
            if engine == "postgresql":  # what a commit waiting for the server's disk costs
                url = empty[engine]("record-async").replace(
                    "options=", "options=-csynchronous_commit%3Doff%20", 1
                )
                results["record"][engine]["async"] = bench.measure_recording(
                    url, media, "partial", RECORD_FILES
                )
            say(
                f"measuring {NODES} nodes x {NODE_FILES} files at once on {ENGINE_NAMES[engine]} ..."
            )
            node_dir = scratch / f"nodes-{engine}"
            node_dir.mkdir()
            results["nodes"][engine] = measure_nodes(empty[engine]("nodes"), node_dir)
        first = f"{engines[0]} {big}"
        results["routes"] = list(results["per"][first]["http"])
    return results


# --- the tables ------------------------------------------------------------------------------


def columns(results: dict[str, Any]) -> list[str]:
    return [f"{e} {label}" for e in results["engines"] for label in results["sizes"]]


def heading(key: str) -> str:
    engine, label = key.split()
    return f"{ENGINE_NAMES[engine]}, {bench.SIZES[label]:,} runs"


def table(results: dict[str, Any]) -> str:
    keys = columns(results)
    per = results["per"]
    head = ["", *map(heading, keys)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, cells: list[str]) -> None:
        lines.append("| " + " | ".join([name, *cells]) + " |")

    row("**query layer**, median / p95 ms", [""] * len(keys))
    for q in QUERIES:
        row(q.name, [cell(per[k]["query"].get(q.name)) for k in keys])
    if results["routes"]:
        row("**HTTP, warm server**, median / p95 ms", [""] * len(keys))
        for name in results["routes"]:
            row(f"GET /stats/{name}", [cell(per[k]["http"].get(name)) for k in keys])
    lines.append("")
    engines = results["engines"]
    head = ["other measure", *(ENGINE_NAMES[e] for e in engines)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rec, nodes = results["record"], results["nodes"]
    row("recording one file (before + 5 actions + after), empty database, median / p95 ms",
        [cell(rec[e]["empty"]) for e in engines])  # fmt: skip
    row(f"same, on the {bench.SIZES[results['sizes'][1]]:,}-run history",
        [cell(rec[e]["history"]) for e in engines])  # fmt: skip
    if "postgresql" in engines:
        row("same, empty database, URL with `options=-csynchronous_commit=off`",
            [cell(rec[e].get("async")) for e in engines])  # fmt: skip
    row(f"{NODES} nodes x {NODE_FILES} files at once: runs landed, totals exact",
        [f"{nodes[e]['runs']:,}, {'exact' if nodes[e]['exact'] else 'NOT exact'}"
         for e in engines])  # fmt: skip
    row("same: slowest hook call after each process's first file",
        [f"{ms(nodes[e]['slowest_hook_ms'])} ms ({nodes[e]['slowest_hook']})" for e in engines])  # fmt: skip
    row("same: slowest hook of each process's first file (it sets the recorder up)",
        [f"{ms(nodes[e]['first_file_hook_ms'])} ms" for e in engines])  # fmt: skip
    row("same: one file (median / p95 ms), wall time",
        [f"{cell(nodes[e]['file_ms'])} ms, {nodes[e]['wall_s']:.1f} s" for e in engines])  # fmt: skip
    if results["move"]:
        m = results["move"]
        cells = ["-" if e == "sqlite" else f"{m['seconds']:.1f} s ({m['runs'] / m['seconds']:,.0f} runs/s)" for e in engines]  # fmt: skip
        row(f"moving the {m['runs']:,}-run SQLite history in (`vpo-stats import SOURCE`)", cells)
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    per = results["per"]
    label = results["sizes"][1]
    big = f"{bench.SIZES[label]:,} runs"

    def check(what: str, value: str, ok: bool) -> None:
        checks.append({"target": what, "measured": value, "result": "PASS" if ok else "MISS"})

    engines = results["engines"]
    if "postgresql" in engines:
        for name in WHOLE_HISTORY:
            fast = per[f"postgresql {label}"]["query"][name]["median_ms"]
            check(f"PostgreSQL {name}, whole history, {big}: < {TARGET_PG_QUERY_MS:.0f} ms",
                  f"{ms(fast)} ms", fast < TARGET_PG_QUERY_MS)  # fmt: skip
            growth = fast / per[f"postgresql {REFERENCE}"]["query"][name]["median_ms"]
            check(f"PostgreSQL {name}, {big}: within {TARGET_GROWTH:.0f}x of 1,000 runs",
                  f"{growth:.2f}x", growth <= TARGET_GROWTH)  # fmt: skip
    for engine in engines:
        http = per[f"{engine} {label}"]["http"]
        if http:
            worst = max(http, key=lambda name: http[name]["median_ms"])
            value = http[worst]["median_ms"]
            check(
                f"{ENGINE_NAMES[engine]}: every dashboard route (filters too), {big}: "
                f"< {TARGET_ROUTE_MS:.0f} ms",
                f"slowest {worst}: {ms(value)} ms",
                value < TARGET_ROUTE_MS,
            )
    for engine in engines:
        limit = TARGET_PG_RECORD_MS if engine == "postgresql" else TARGET_SQLITE_RECORD_MS
        for where in ("empty", "history"):
            value = results["record"][engine][where]["median_ms"]
            label = "empty database" if where == "empty" else big
            check(f"{ENGINE_NAMES[engine]}: recording a file, {label}: < {limit:.0f} ms",
                  f"{ms(value)} ms", value < limit)  # fmt: skip
    for engine in engines:
        n = results["nodes"][engine]
        check(
            f"{ENGINE_NAMES[engine]}: {NODES} x {NODE_FILES} files at once give "
            f"{NODES * NODE_FILES:,} runs, exact totals, no hook over {TARGET_HOOK_MS:.0f} ms",
            f"{n['runs']:,} runs, {'exact' if n['exact'] else 'not exact'}, "
            f"slowest hook {ms(n['slowest_hook_ms'])} ms (after each process's first file)",
            n["exact"] and n["slowest_hook_ms"] <= TARGET_HOOK_MS,
        )
    if results["move"]:
        seconds = results["move"]["seconds"]
        check(f"moving {big} from SQLite into PostgreSQL: < {TARGET_MOVE_S:.0f} s",
              f"{seconds:.1f} s", seconds < TARGET_MOVE_S)  # fmt: skip
    return checks


def main(engine: str, big: str, pg_url: str | None, fresh: bool, no_http: bool) -> int:
    engines = list(ENGINES) if engine == "both" else [engine]
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    results = run(engines, big, pg_url, fresh, no_http)
    checks = targets(results)
    results["targets"] = checks
    out = bench.RESULTS / "engines.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    server = results.get("postgresql_version")
    print(
        f"vpo-stats engines benchmark, {results['when']}, {results['machine']}"
        + (f", PostgreSQL {server} on loopback" if server else "")
        + "\n"
    )
    print(table(results))
    print()
    print(bench.targets_table(checks))
    print(f"\n(results in {out.relative_to(bench.HERE.parent)})")
    return 0
