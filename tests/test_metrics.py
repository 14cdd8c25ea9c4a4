"""GET /metrics on a real aiohttp server over real SQLite or the suite's PostgreSQL server:
every value parsed by prometheus-client's own parsers (text and OpenMetrics) and checked against
the CLI's json; the duration buckets kept right by import, purge, rebuild and the migration;
read-only, mounted anywhere, started lazily."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import engine_db_path
from history import (
    NODES,
    POLICIES,
    Expected,
    copy_db,
    import_runs,
    invoke,
    json_of,
    make_history,
)
from metrics_check import (
    EXPORTED,
    check_against_cli,
    check_buckets,
    parse,
    stamp_now,
    total,
    values,
)

from vpo_stats_plugin.cli.serve import make_root_app
from vpo_stats_plugin.config import load_settings
from vpo_stats_plugin.filters import iso, utcnow
from vpo_stats_plugin.liveness import process_start_ticks
from vpo_stats_plugin.store import open_store
from vpo_stats_plugin.store.rollups import DURATION_BOUNDS
from vpo_stats_plugin.web import create_app

ROOT = Path(__file__).resolve().parent.parent
OPENMETRICS = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
HERE = socket.gethostname()  # the node the CLI and the app read as


db_path = pytest.fixture(engine_db_path, name="db_path")  # both engines


@pytest.fixture
def now() -> Any:
    return stamp_now()


@pytest.fixture
def history(db_path: Path, now: Any) -> list[dict[str, Any]]:
    """The varied history of tests/history.py (4 policies, 3 nodes, every status, durations
    from seconds to four hours) plus some recording errors, in the database at ``db_path``."""
    runs = make_history(now)
    import_runs(db_path, runs)
    with open_store(db_path) as store:
        store.record_error("locked", "database is locked", 3)
        store.record_error("disk_full", "database or disk is full", 2)
    return runs


@pytest.fixture
def cli(runner: Any, db_path: Path) -> Callable[..., dict[str, Any]]:
    """The CLI's json for a reading command: ``cli("summary", "--node", "x")``."""
    return lambda *args: json_of(invoke(runner, db_path, *args, "--format", "json"))


@pytest.fixture
async def client(aiohttp_client: Any, db_path: Path) -> Any:
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    return await aiohttp_client(create_app(settings))


async def scrape(client: Any, path: str = "/metrics", openmetrics: bool = False) -> str:
    headers = {"Accept": OPENMETRICS} if openmetrics else {}
    response = await client.get(path, headers=headers)
    text = await response.text()
    assert response.status == 200, text
    return text


def effective(runs: list[dict[str, Any]], now: Any) -> list[dict[str, Any]]:
    """The runs as read here: stale or dead running runs count as interrupted."""
    return Expected(runs, node=HERE, now=now).runs


# ------------------------------------------------------------------ values


async def test_every_value_agrees_with_the_cli(
    client: Any, history: list[dict[str, Any]], cli: Any, now: Any
) -> None:
    text = await scrape(client)
    samples = parse(text)
    # the OpenMetrics exposition carries the same samples
    assert parse(await scrape(client, openmetrics=True), openmetrics=True) == samples
    check_against_cli(samples, cli, set(NODES))
    check_buckets(samples, effective(history, now))
    # the history has what makes the check worth it
    assert total(samples, "vpo_stats_recording_errors_total") == 5
    assert total(samples, "vpo_stats_runs_running") == 2
    assert values(samples, "vpo_stats_runs_total", "status") == {
        "succeeded",
        "failed",
        "interrupted",
    }
    assert len(values(samples, "vpo_stats_runs_total", "policy")) == len(POLICIES)
    per_bucket = {
        b: total(samples, "vpo_stats_run_duration_seconds_bucket", le=str(float(b)))
        for b in DURATION_BOUNDS
    }
    assert len(set(per_bucket.values())) > len(DURATION_BOUNDS) // 2  # spread over the bounds
    assert list(per_bucket.values()) == sorted(per_bucket.values())  # cumulative


async def test_a_history_recorded_live_through_the_reference_host_agrees(
    aiohttp_client: Any, recorded: Path, db_path: str, cli: Any, engine: str, runner: Any
) -> None:
    """Real media made with ffmpeg, processed by the reference host with the plugin loaded
    (on PostgreSQL: moved there with `import SOURCE`, as a user moves a history)."""
    if engine == "sqlite":
        copy_db(recorded, Path(db_path))
    else:
        assert invoke(runner, db_path, "import", str(recorded)).exit_code == 0
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    client = await aiohttp_client(create_app(settings))
    samples = parse(await scrape(client))
    check_against_cli(samples, cli, {HERE})
    assert total(samples, "vpo_stats_runs_total", status="succeeded") >= 3
    assert total(samples, "vpo_stats_run_duration_seconds_count") == total(
        samples, "vpo_stats_runs_total"
    )


async def test_an_empty_database_exports_its_zero_errors_only(client: Any) -> None:
    samples = parse(await scrape(client))
    assert samples == {("vpo_stats_recording_errors_total", ()): 0.0}


async def test_a_dead_run_counts_as_interrupted_and_a_live_one_as_running(
    client: Any, db_path: Path, cli: Any
) -> None:
    """The reaping every reader does: this node's run whose process died is interrupted at once;
    one whose process lives is in the running gauge, and in no counter yet."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    base = {"path": "/m/a.mkv", "policy": "p", "node": HERE, "status": "running", "source": "hooks"}
    with open_store(db_path) as store:
        started = iso(utcnow())
        store.begin_run(
            {
                **base,
                "id": "1" * 8 + "-0000-4000-8000-" + "0" * 12,
                "started_at": started,
                "pid": dead_pid,
                "process_started": None,
            }
        )
        store.begin_run(
            {
                **base,
                "id": "2" * 8 + "-0000-4000-8000-" + "0" * 12,
                "started_at": started,
                "pid": os.getpid(),
                "process_started": process_start_ticks(os.getpid()),
            }
        )
    samples = parse(await scrape(client))
    assert (
        samples[
            ("vpo_stats_runs_total", (("node", HERE), ("policy", "p"), ("status", "interrupted")))
        ]
        == 1
    )
    assert samples[("vpo_stats_runs_running", (("node", HERE),))] == 1
    check_against_cli(samples, cli, {HERE})


async def test_import_purge_and_rebuild_keep_every_value_right(
    client: Any, history: list[dict[str, Any]], db_path: Path, cli: Any, runner: Any, now: Any
) -> None:
    runs = effective(history, now)
    more = make_history(now, count=60, seed=11)
    import_runs(db_path, more)
    runs += effective(more, now)
    check_buckets(parse(await scrape(client)), runs)
    check_against_cli(parse(await scrape(client)), cli, set(NODES))

    # purges: a policy, a status, a time range (a counter reset, for Prometheus)
    for args, gone in (
        (["--policy", POLICIES[0]], lambda r: r["policy"] == POLICIES[0]),
        (["--status", "failed"], lambda r: r["status"] == "failed"),
        (["--before", "90d"], lambda r: r["_started"] < now - timedelta(days=90)),
    ):
        before = total(parse(await scrape(client)), "vpo_stats_runs_total")
        done = invoke(runner, db_path, "purge", *args, "--yes", "--format", "json")
        deleted = json_of(done)["deleted"]
        assert deleted > 0, args
        runs = [r for r in runs if r["status"] == "running" or not gone(r)]
        samples = parse(await scrape(client))
        assert total(samples, "vpo_stats_runs_total") == before - deleted
        check_buckets(samples, runs)
        check_against_cli(samples, cli, {r["node"] for r in runs})

    # a rebuild finds the incremental buckets exact, and changes no value
    assert (
        json_of(invoke(runner, db_path, "rebuild", "--check", "--format", "json"))["differing_rows"]
        == 0
    )
    scraped = await scrape(client)
    assert json_of(invoke(runner, db_path, "rebuild", "--format", "json"))["differing_rows"] == 0
    assert parse(await scrape(client)) == parse(scraped)


def test_the_migration_fills_the_buckets_from_the_stored_runs(tmp_path: Path) -> None:
    """A database of the last released schema has runs but no buckets: upgraded, its buckets
    are what the runs say, and what a rebuild makes."""
    dumps = sorted((ROOT / "tests" / "fixtures").glob("schema_v*.sql"))
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(dumps[-1].read_text(encoding="utf-8"))
    durations = conn.execute(
        "SELECT COALESCE(policy, ''), node, duration_seconds FROM runs "
        "WHERE status != 'running' AND duration_seconds IS NOT NULL"
    ).fetchall()
    conn.close()
    assert len({d for *_, d in durations}) > 3, "the fixture has runs of several durations"
    with open_store(db, node="reader-node", stale_after=1e10) as store:
        migrated = store.conn.execute("SELECT * FROM rollup_durations ORDER BY 1, 2, 3").fetchall()
        got: dict[tuple, list[int]] = {}
        for row in migrated:
            counts = [row[f"le_{b}"] for b in DURATION_BOUNDS]
            key = (row["policy"], row["node"])
            got[key] = [a + b for a, b in zip(got.get(key, [0] * len(counts)), counts)]
        want: dict[tuple, list[int]] = {}
        for policy, node, d in durations:
            counts = want.setdefault((policy, node), [0] * len(DURATION_BOUNDS))
            for i, bound in enumerate(DURATION_BOUNDS):
                counts[i] += d <= bound
        assert got == want
        assert store.rebuild_rollups(check=True)["differing_by_table"] == {}


# ------------------------------------------------------------------ the endpoint


async def test_content_negotiation(client: Any, history: Any) -> None:
    plain = await client.get("/metrics")
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in await plain.text()
    om = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = await om.text()
    assert body.endswith("# EOF\n") and "# TYPE vpo_stats_runs counter" in body
    assert "# UNIT vpo_stats_run_duration_seconds seconds" in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_read_only(client: Any, method: str) -> None:
    response = await client.request(method, "/metrics")
    assert response.status == 405
    assert response.headers["Allow"] == "GET,HEAD"
    assert "not allowed" in (await response.json())["error"]
    assert (await client.head("/metrics")).status == 200


async def test_a_database_it_cannot_use_answers_an_error_naming_it(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is no SQLite database" * 100)
    settings = load_settings(overrides={"database": (str(bad), "test")})
    for app, paths in (
        (create_app(settings), ["/metrics"]),
        (make_root_app(settings), ["/metrics", "/stats/metrics"]),
    ):
        client = await aiohttp_client(app)
        for path in paths:
            response = await client.get(path)
            assert response.status == 500, path
            assert str(bad) in (await response.json())["error"], path
    assert bad.read_bytes() == b"this is no SQLite database" * 100


async def test_serve_answers_at_the_root_and_under_stats_with_the_same_host_rules(
    aiohttp_client: Any, db_path: Path, history: Any
) -> None:
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    client = await aiohttp_client(make_root_app(settings))
    root, mounted = await scrape(client, "/metrics"), await scrape(client, "/stats/metrics")
    assert parse(root) == parse(mounted) and total(parse(root), "vpo_stats_runs_total") > 0
    for path in ("/metrics", "/stats/metrics"):
        refused = await client.get(path, headers={"Host": "evil.example:8321"})
        assert refused.status == 403, path
        assert (await client.post(path)).status == 405


async def test_mounted_at_another_prefix_in_a_host(
    aiohttp_client: Any, db_path: Path, history: Any, cli: Any
) -> None:
    settings = load_settings(overrides={"database": (str(db_path), "test")})
    host = web.Application()

    async def own(request: web.Request) -> web.Response:
        return web.Response(text="host_own_metric 1\n")

    host.router.add_get("/metrics", own)
    host.add_subapp("/tools/vpo-stats", create_app(settings))
    client = await aiohttp_client(host)
    samples = parse(await scrape(client, "/tools/vpo-stats/metrics"))
    check_against_cli(samples, cli, set(NODES))
    assert await scrape(client, "/metrics") == "host_own_metric 1\n"  # the host's own is left alone


async def test_a_scrape_leaves_the_process_wide_registry_alone(client: Any, history: Any) -> None:
    from prometheus_client import REGISTRY, generate_latest

    await scrape(client)
    assert b"vpo_stats" not in generate_latest(REGISTRY)


async def test_series_stay_bounded_by_policies_nodes_and_statuses(
    client: Any, db_path: Path, now: Any
) -> None:
    """Twice the runs over the same policies and nodes: not one series more."""
    import_runs(db_path, make_history(now, count=1000, seed=1))
    first = parse(await scrape(client))
    import_runs(db_path, make_history(now, count=1000, seed=2))
    second = parse(await scrape(client))
    assert set(first) == set(second) and first != second
    policies, nodes = len(POLICIES), len(NODES)
    assert sum(1 for n, _ in second if n == "vpo_stats_runs_total") <= policies * nodes * 3
    buckets = sum(1 for n, _ in second if n == "vpo_stats_run_duration_seconds_bucket")
    assert buckets == policies * nodes * (len(DURATION_BOUNDS) + 1)


def test_prometheus_client_is_loaded_by_the_first_scrape_only(tmp_path: Path) -> None:
    """The CLI's start-up and a host mounting the app do not pay for prometheus-client."""
    probe = (
        "import json, sys\n"
        "import vpo_stats_plugin.cli\n"
        "from vpo_stats_plugin.web import create_app\n"
        "from vpo_stats_plugin.config import load_settings\n"
        f"create_app(load_settings(overrides={{'database': ({str(tmp_path / 's.db')!r}, 't')}}))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "VPO_STATS_DATABASE": str(tmp_path / "s.db")}
    open_store(tmp_path / "s.db").close()  # summary reads a database that exists
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "vpo_stats_plugin.web.metrics" in loaded
    assert not {m for m in loaded if m.startswith("prometheus_client")}
    for args in (["--help"], ["summary"], ["serve", "--help"]):
        code = (
            "import json, sys\nfrom vpo_stats_plugin.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as e:\n    assert not e.code\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        modules = set(json.loads(done.stderr.strip().splitlines()[-1]))
        assert not {m for m in modules if m.startswith("prometheus_client")}, args


# ------------------------------------------------------------------ docs and the dashboard

DOC = ROOT / "docs" / "metrics.md"
DASHBOARD = ROOT / "docs" / "grafana" / "vpo-stats.json"
FAMILIES = sorted({re.sub(r"_(bucket|sum|count)$", "", n) for n in EXPORTED})


def test_metrics_doc_names_every_metric_its_bounds_and_the_queries() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in FAMILIES:
        assert f"`{name}`" in text, name
    bounds = ", ".join(str(b) for b in DURATION_BOUNDS)
    assert bounds in text, "the bucket bounds, as rollups.DURATION_BOUNDS has them"
    for words in ("scrape_configs", "counter reset", "histogram_quantile(0.95", "[1d]"):
        assert words in text, words
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/metrics.md" in readme


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_grafana_dashboard_has_what_an_import_needs() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert (
        dashboard["title"] and dashboard["uid"] and "id" not in dashboard or dashboard["id"] is None
    )
    (source,) = [i for i in dashboard["__inputs"] if i["type"] == "datasource"]
    assert source["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("policy", "node"):
        var = variables[name]
        assert var["type"] == "query" and var["includeAll"] and var["multi"]
        assert var["datasource"]["uid"] == "${datasource}"
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert re.fullmatch(rf"label_values\((vpo_stats_\w+), {name}\)", query), query
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert {"type", "title", "gridPos", "datasource"} <= set(panel), panel.get("title")
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["datasource"]["uid"] == "${datasource}"
    titles = " | ".join(p["title"].lower() for p in panels)
    for words in (
        "space saved",
        "runs by status",
        "failure rate",
        "run time",
        "transcodes",
        "tracks removed",
    ):
        assert words in titles, words
    # every ${...} the JSON uses is defined: an input or a variable (Grafana's own are $__...)
    used = set(re.findall(r"\$\{(\w+)\}", DASHBOARD.read_text(encoding="utf-8")))
    assert used <= set(variables) | {source["name"]}


async def test_grafana_queries_name_only_exported_metrics(client: Any, history: Any) -> None:
    samples = parse(await scrape(client))
    exported = {n for n, _ in samples}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = _exprs(dashboard)
    assert len(exprs) >= 6
    by_node_only = ("vpo_stats_runs_running", "vpo_stats_last_run_timestamp_seconds")
    for expr in exprs:
        names = set(re.findall(r"\bvpo_stats_\w+", expr))
        assert names and names <= exported, expr
        # every series selected follows the dashboard's node (and policy) variables
        for name, selector in re.findall(r"\b(vpo_stats_\w+)(\{[^}]*\})?", expr):
            if name == "vpo_stats_recording_errors_total":
                continue
            assert 'node=~"$node"' in selector, expr
            assert name in by_node_only or 'policy=~"$policy"' in selector, expr
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            assert set(re.findall(r"\bvpo_stats_\w+", query)) <= exported
