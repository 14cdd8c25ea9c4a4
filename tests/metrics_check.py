"""Helpers for the /metrics tests: the exposition parsed by prometheus-client's own parsers, and
every value checked against the CLI's json (and the duration buckets against the runs)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from history import parse_time

from vpo_stats_plugin.store.rollups import DURATION_BOUNDS

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
FINISHED = ("succeeded", "failed", "interrupted")
KINDS = ("audio", "subtitle", "attachment")
EXPORTED = (
    "vpo_stats_runs_total",
    "vpo_stats_runs_running",
    "vpo_stats_size_before_bytes_total",
    "vpo_stats_size_after_bytes_total",
    "vpo_stats_saved_bytes",
    "vpo_stats_tracks_removed_total",
    "vpo_stats_video_transcodes_total",
    "vpo_stats_run_duration_seconds_bucket",
    "vpo_stats_run_duration_seconds_sum",
    "vpo_stats_run_duration_seconds_count",
    "vpo_stats_last_run_timestamp_seconds",
    "vpo_stats_recording_errors_total",
)


def parse(text: str, openmetrics: bool = False) -> Samples:
    """Every sample of an exposition, by (sample name, sorted labels), via prometheus-client."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"sample {key} twice"
            out[key] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def values(samples: Samples, name: str, label: str) -> set[str]:
    """The values ``label`` takes on the samples of ``name``."""
    return {dict(ls)[label] for (n, ls), _ in samples.items() if n == name and label in dict(ls)}


def _epoch(stamp: str) -> float:
    return parse_time(stamp).timestamp()


def check_scope(samples: Samples, summary: dict[str, Any], **labels: str) -> None:
    """The samples within ``labels`` (policy and/or node) sum to the CLI's ``summary``."""
    where = f"{labels} vs summary"
    for status in FINISHED:
        got = total(samples, "vpo_stats_runs_total", status=status, **labels)
        assert got == summary[status], (where, status)
    if "policy" not in labels:  # the running gauge is by node only
        assert total(samples, "vpo_stats_runs_running", **labels) == summary["running"], where
    for metric, field in (
        ("vpo_stats_size_before_bytes_total", "size_before_bytes"),
        ("vpo_stats_size_after_bytes_total", "size_after_bytes"),
        ("vpo_stats_saved_bytes", "saved_bytes"),
    ):
        assert total(samples, metric, **labels) == summary[field], (where, field)
    for kind in KINDS:
        got = total(samples, "vpo_stats_tracks_removed_total", type=kind, **labels)
        assert got == summary["tracks_removed"][kind], (where, kind)
    done = total(samples, "vpo_stats_video_transcodes_total", outcome="done", **labels)
    skipped = total(samples, "vpo_stats_video_transcodes_total", outcome="skipped", **labels)
    assert (done, skipped) == (summary["videos_transcoded"], summary["videos_transcode_skipped"])
    seconds = summary["duration_seconds"]
    got_sum = total(samples, "vpo_stats_run_duration_seconds_sum", **labels)
    got_count = total(samples, "vpo_stats_run_duration_seconds_count", **labels)
    assert round(got_sum, 3) == seconds["total"], where
    if seconds["mean"]:
        assert round(got_sum / got_count, 3) == seconds["mean"], where
    else:
        assert got_count == 0 or got_sum == 0, where
    assert total(samples, "vpo_stats_run_duration_seconds_bucket", le="+Inf", **labels) == got_count


def check_against_cli(
    samples: Samples, cli: Callable[..., dict[str, Any]], nodes: set[str]
) -> None:
    """Every value of ``samples`` against the CLI's json: the whole history, per node, per
    policy, per policy x node (``cli(*args)`` answers a reading command's json)."""
    assert {n for n, _ in samples} == set(EXPORTED)
    everything = cli("summary")
    check_scope(samples, everything)
    assert total(samples, "vpo_stats_recording_errors_total") == cli("status")["recording_errors"]
    assert values(samples, "vpo_stats_runs_running", "node") == nodes
    for node in nodes:
        summary = cli("summary", "--node", node)
        check_scope(samples, summary, node=node)
        stamp = samples[("vpo_stats_last_run_timestamp_seconds", (("node", node),))]
        assert stamp == _epoch(summary["last_run_at"]), node
    rows = cli("policies")["policies"]
    assert values(samples, "vpo_stats_runs_total", "policy") == {r["policy"] or "" for r in rows}
    for row in rows:
        policy = row["policy"] or ""
        for status in FINISHED:
            got = total(samples, "vpo_stats_runs_total", policy=policy, status=status)
            assert got == row[status], (policy, status)
        for field in ("size_before_bytes", "size_after_bytes", "saved_bytes"):
            name = "vpo_stats_saved_bytes" if field == "saved_bytes" else f"vpo_stats_{field}_total"
            assert total(samples, name, policy=policy) == row[field], (policy, field)
        if row["policy"] is None:
            continue  # `--policy` cannot name "no policy"
        for node in nodes:
            check_scope(
                samples,
                cli("summary", "--policy", policy, "--node", node),
                policy=policy,
                node=node,
            )
    rows = cli("nodes")["nodes"]
    assert {r["node"] for r in rows} == nodes
    for row in rows:
        node = row["node"]
        for status in FINISHED:
            assert total(samples, "vpo_stats_runs_total", node=node, status=status) == row[status]
        assert samples[("vpo_stats_runs_running", (("node", node),))] == row["running"], node
        for field in ("size_before_bytes", "size_after_bytes", "saved_bytes"):
            name = "vpo_stats_saved_bytes" if field == "saved_bytes" else f"vpo_stats_{field}_total"
            assert total(samples, name, node=node) == row[field], (node, field)


def check_buckets(samples: Samples, runs: list[dict[str, Any]]) -> None:
    """The duration buckets of each policy x node, counted here from ``runs`` (every run with a
    duration, as summary's total counts them)."""
    pairs = {(r["policy"] or "", r["node"]) for r in runs}
    for policy, node in pairs:
        timed = [
            r["duration_seconds"]
            for r in runs
            if (r["policy"] or "", r["node"]) == (policy, node)
            and r.get("duration_seconds") is not None
        ]
        labels = {"policy": policy, "node": node}
        for bound in DURATION_BOUNDS:
            got = total(
                samples, "vpo_stats_run_duration_seconds_bucket", le=f"{float(bound)}", **labels
            )
            assert got == sum(1 for d in timed if d <= bound), (labels, bound)
        assert total(samples, "vpo_stats_run_duration_seconds_count", **labels) == len(timed)
        got_sum = total(samples, "vpo_stats_run_duration_seconds_sum", **labels)
        assert math.isclose(got_sum, sum(timed), rel_tol=1e-12, abs_tol=1e-9), labels


def prometheus_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """``histogram_quantile(q, ...)`` as Prometheus computes it, over cumulative
    ``(upper bound, count)`` pairs ending with +Inf."""
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]
    if index == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    end, count = buckets[index]
    return start + (end - start) * ((rank - below) / (count - below))


def stamp_now() -> datetime:
    """Now, to whole seconds (histories are made relative to it)."""
    from datetime import timezone

    return datetime.now(timezone.utc).replace(microsecond=0)
