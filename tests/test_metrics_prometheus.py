"""A real Prometheus (Debian's `prometheus`, installed by scripts/setup.sh for the tests) scrapes a
real `vpo-stats serve` on loopback; what its query API answers equals what the CLI says."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from history import NODES, import_runs, make_history, vpo_stats_script
from metrics_check import check_against_cli, parse, prometheus_quantile, stamp_now

from vpo_stats_plugin.store.rollups import DURATION_BOUNDS

pytestmark = pytest.mark.slow

PROMETHEUS, PROMTOOL = Path("/usr/bin/prometheus"), Path("/usr/bin/promtool")
DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "vpo-stats.json"
WAIT = 60.0  # the longest any wait here lasts
JOBS = {"vpo-stats": "/metrics", "vpo-stats-mounted": "/stats/metrics"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read().decode()


def poll(what: str, check: Any, deadline: float) -> Any:
    """``check()``'s first true answer, trying until ``deadline`` (errors count as not yet)."""
    last: Any = None
    while time.monotonic() < deadline:
        try:
            answer = check()
            if answer:
                return answer
            last = answer
        except (OSError, ValueError, KeyError) as err:
            last = err
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what} after {WAIT:.0f} s: {last!r}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A history in SQLite, `vpo-stats serve` on it, Prometheus scraping it every second."""
    assert PROMETHEUS.exists() and PROMTOOL.exists(), (
        "Prometheus is missing: scripts/test.sh installs it (apt-get install prometheus)"
    )
    base = tmp_path_factory.mktemp("prometheus")
    home = base / "home"
    home.mkdir()
    db = base / "stats.db"
    runs = make_history(stamp_now())
    import_runs(db, runs)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "VPO_STATS_DATABASE": str(db)}
    serve_port, prom_port = free_port(), free_port()
    config = base / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    metrics_path: {path}\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{serve_port}']\n"
            for job, path in JOBS.items()
        )
    )
    logs = {name: open(base / f"{name}.log", "w") for name in ("serve", "prometheus")}  # noqa: SIM115
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [vpo_stats_script(), "--db", str(db), "serve", "--port", str(serve_port)],
                env=env,
                stdout=logs["serve"],
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={base / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                stdout=logs["prometheus"],
                stderr=subprocess.STDOUT,
                cwd=base,
            )
        )
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        deadline = time.monotonic() + WAIT

        def targets_up() -> bool:
            for name, proc in zip(logs, procs):
                if proc.poll() is not None:  # it died: say why at once
                    logs[name].flush()
                    text = (base / f"{name}.log").read_text(errors="replace")
                    raise AssertionError(f"{name} exited with {proc.returncode}:\n{text}")
            # a first scrape may come before serve listens: down until a later one succeeds
            active = json.loads(get(f"{api}/targets"))["data"]["activeTargets"]
            if len(active) == len(JOBS) and all(t["health"] == "up" for t in active):
                return True
            raise ValueError([(t["scrapeUrl"], t["health"], t["lastError"]) for t in active])

        poll("both targets up", targets_up, deadline)
        # enough scrapes for rate() and increase() over a minute to have two points or more
        poll("four scrapes of each target", lambda: scrapes(api) >= 4, deadline)
        yield {
            "api": api,
            "db": db,
            "env": env,
            "runs": runs,
            "serve": f"http://127.0.0.1:{serve_port}",
        }
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT if proc is procs[0] else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in logs.values():
            log.close()


def scrapes(api: str) -> float:
    """How many scrapes of the target scraped least the last minute holds."""
    counts = query(api, "count_over_time(vpo_stats_recording_errors_total[1m])")
    return min(float(r["value"][1]) for r in counts) if len(counts) == len(JOBS) else 0


def query(api: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector Prometheus answers for ``promql`` (its HTTP query API)."""
    answer = json.loads(get(f"{api}/query?" + urllib.parse.urlencode({"query": promql})))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def scalar(api: str, promql: str) -> float:
    (result,) = query(api, promql)
    return float(result["value"][1])


def cli(stack: dict[str, Any], *args: str) -> dict[str, Any]:
    """What `vpo-stats ARGS --format json` prints, from the checkout's own script."""
    done = subprocess.run(
        [vpo_stats_script(), "--db", str(stack["db"]), *args, "--format", "json"],
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_prometheus_sums_equal_the_cli(stack: dict[str, Any]) -> None:
    api = stack["api"]
    summary = cli(stack, "summary")
    finished = summary["succeeded"] + summary["failed"] + summary["interrupted"]
    for job in JOBS:
        assert scalar(api, f'sum(vpo_stats_runs_total{{job="{job}"}})') == finished, job
    job = 'job="vpo-stats"'
    for status in ("succeeded", "failed", "interrupted"):
        assert (
            scalar(api, f'sum(vpo_stats_runs_total{{{job}, status="{status}"}})') == summary[status]
        )
    assert scalar(api, f"sum(vpo_stats_runs_running{{{job}}})") == summary["running"] > 0
    assert scalar(api, f"sum(vpo_stats_saved_bytes{{{job}}})") == summary["saved_bytes"]
    total_seconds = scalar(api, f"sum(vpo_stats_run_duration_seconds_sum{{{job}}})")
    assert round(total_seconds, 3) == summary["duration_seconds"]["total"]
    # per node: runs, saved bytes, running runs, last run
    by_node = {
        r["metric"]["node"]: float(r["value"][1])
        for r in query(api, f"sum by (node) (vpo_stats_runs_total{{{job}}})")
    }
    saved = {
        r["metric"]["node"]: float(r["value"][1])
        for r in query(api, f"sum by (node) (vpo_stats_saved_bytes{{{job}}})")
    }
    assert set(by_node) == set(saved) == set(NODES)
    rows = {r["node"]: r for r in cli(stack, "nodes")["nodes"]}
    assert set(rows) == set(NODES)
    for node in NODES:
        mine = cli(stack, "summary", "--node", node)
        assert by_node[node] == mine["succeeded"] + mine["failed"] + mine["interrupted"], node
        row = rows[node]  # `vpo-stats nodes` says the same
        assert by_node[node] == row["succeeded"] + row["failed"] + row["interrupted"], node
        assert saved[node] == mine["saved_bytes"] == row["saved_bytes"], node
        running = scalar(api, f'vpo_stats_runs_running{{{job}, node="{node}"}}')
        assert running == mine["running"] == row["running"], node


def test_prometheus_histogram_quantiles_follow_the_buckets(stack: dict[str, Any]) -> None:
    """``histogram_quantile`` over the scraped buckets, against the same interpolation over the
    buckets counted from the runs by hand; the count and sum are the summary's."""
    api, runs = stack["api"], stack["runs"]
    timed = [r["duration_seconds"] for r in runs if r.get("duration_seconds") is not None]
    buckets = [(float(b), sum(1 for d in timed if d <= b)) for b in DURATION_BOUNDS]
    buckets.append((float("inf"), len(timed)))
    job = 'job="vpo-stats"'
    assert scalar(api, f"sum(vpo_stats_run_duration_seconds_count{{{job}}})") == len(timed)
    for q in (0.5, 0.9, 0.95, 0.99):
        got = scalar(
            api,
            f"histogram_quantile({q}, sum by (le) (vpo_stats_run_duration_seconds_bucket{{{job}}}))",
        )
        assert got == pytest.approx(prometheus_quantile(q, buckets), rel=1e-9), q
    # per policy, as docs/metrics.md's p95 query
    per_policy = query(
        api,
        f"histogram_quantile(0.95, sum by (le, policy) (vpo_stats_run_duration_seconds_bucket{{{job}}}))",
    )
    assert len(per_policy) == len({r["policy"] or "" for r in runs})
    for result in per_policy:
        policy = result["metric"].get("policy", "")
        mine = [
            r["duration_seconds"]
            for r in runs
            if (r["policy"] or "") == policy and r.get("duration_seconds") is not None
        ]
        want = [(float(b), sum(1 for d in mine if d <= b)) for b in DURATION_BOUNDS]
        want.append((float("inf"), len(mine)))
        assert float(result["value"][1]) == pytest.approx(prometheus_quantile(0.95, want), rel=1e-9)


def test_what_prometheus_scraped_is_what_the_cli_says(stack: dict[str, Any]) -> None:
    """Every value read back through Prometheus, one series at a time, against the CLI."""
    api = stack["api"]
    samples = {}
    for result in query(api, '{__name__=~"vpo_stats_.+", job="vpo-stats"}'):
        labels = {
            k: v for k, v in result["metric"].items() if k not in ("__name__", "job", "instance")
        }
        samples[(result["metric"]["__name__"], tuple(sorted(labels.items())))] = float(
            result["value"][1]
        )
    # Prometheus drops empty labels (policy="") from a series: put them back for the check
    fixed = {}
    for (name, labels), value in samples.items():
        has_policy = name not in (
            "vpo_stats_runs_running",
            "vpo_stats_last_run_timestamp_seconds",
            "vpo_stats_recording_errors_total",
        )
        if has_policy and "policy" not in dict(labels):
            labels = tuple(sorted((*labels, ("policy", ""))))
        fixed[(name, labels)] = value
    direct = parse(get(stack["serve"] + "/metrics"))
    assert fixed == direct
    check_against_cli(fixed, lambda *args: cli(stack, *args), set(NODES))


def test_every_grafana_query_runs_on_prometheus(stack: dict[str, Any]) -> None:
    api = stack["api"]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        promql = expr.replace('"$policy"', '".*"').replace('"$node"', '".*"')
        promql = promql.replace("$__rate_interval", "1m")
        assert "$" not in promql, expr
        assert query(api, promql), f"no series for {expr}"
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        metric, label = re.fullmatch(
            r"label_values\((\w+), (\w+)\)", var["query"]["query"]
        ).groups()
        assert {r["metric"].get(label) for r in query(api, metric)} - {None}, var["name"]


def test_promtool_passes_the_exposition(stack: dict[str, Any]) -> None:
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        request = urllib.request.Request(stack["serve"] + "/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=5) as answer:
            body = answer.read()
        if accept:  # promtool reads the text format; OpenMetrics is checked by Prometheus itself
            assert body.endswith(b"# EOF\n")
            continue
        done = subprocess.run(
            [str(PROMTOOL), "check", "metrics"], input=body, capture_output=True, timeout=30
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert b"vpo_stats_run_duration_seconds_bucket" in body
