"""``GET /metrics``: the stored history as Prometheus metrics (CONTRACT section 8).

prometheus-client writes the exposition, classic text or OpenMetrics as the scraper's
``Accept`` asks; a collector of this module reads the store on each scrape and yields the metric
families, through a registry of the app's own (never the process-wide one a host may use).
prometheus-client is imported on the first scrape, so mounting the app costs nothing more.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiohttp import web

from ..errors import StatsError
from ..store.rollups import DURATION_BOUNDS
from .errors import error_response
from .keys import METRICS

TRACK_KINDS = ("audio", "subtitle", "attachment")
FINISHED = ("succeeded", "failed", "interrupted")


class MetricsExporter:
    """The app's registry (made on first use) with one collector reading through ``readers``
    (a ``web.readers.Readers``)."""

    def __init__(self, readers: Any) -> None:
        self.readers = readers
        self._registry: Any = None
        self._lock = threading.Lock()

    def registry(self) -> Any:
        """The ``CollectorRegistry`` of this app, holding a ``StatsCollector``."""
        with self._lock:
            if self._registry is None:
                from prometheus_client import CollectorRegistry

                registry = CollectorRegistry(auto_describe=False)
                registry.register(StatsCollector(self))
                self._registry = registry
            return self._registry

    def read(self) -> dict[str, Any]:
        """The store's metrics answer, read as every request reads."""
        return self.readers.ask(lambda store: store.metrics())

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The body and content type for a scraper sending ``accept``."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry()), content_type


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


PAIR_SUMS = (
    "size_before_bytes",
    "size_after_bytes",
    "videos_transcoded",
    "videos_transcode_skipped",
    "timed_runs",
    *(f"removed_{kind}" for kind in TRACK_KINDS),
)


def _fold(groups: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """The per-status groups summed per (policy, node), and per node its running runs and
    newest start."""
    pairs: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: defaultdict(int, buckets=[0] * len(DURATION_BOUNDS), duration=0.0)
    )
    nodes: dict[str, dict[str, Any]] = defaultdict(lambda: {"running": 0, "last": None})
    for g in groups:
        state = nodes[g["node"]]
        if g["status"] not in FINISHED:
            state["running"] += g["runs"]
        pair = pairs[g["policy"] or "", g["node"]]
        for name in PAIR_SUMS:
            pair[name] += g.get(name) or 0
        pair["duration"] += g.get("duration_seconds") or 0.0
        pair["buckets"] = [a + b for a, b in zip(pair["buckets"], g["buckets"])]
        stamp = g.get("last_run_at")
        if stamp and (state["last"] is None or stamp > state["last"]):
            state["last"] = stamp
    return pairs, nodes


class StatsCollector:
    """A prometheus-client collector: every metric family of CONTRACT section 8, from one read."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )
        from prometheus_client.utils import floatToGoString

        answer = self.exporter.read()
        groups = answer["groups"]
        pn = ["policy", "node"]

        runs = CounterMetricFamily(
            "vpo_stats_runs_total",
            "Finished runs (files processed) by policy, node and status; runs that died count as "
            "interrupted.",
            labels=[*pn, "status"],
        )
        running = GaugeMetricFamily(
            "vpo_stats_runs_running", "Runs in progress now, by node.", labels=["node"]
        )
        before = CounterMetricFamily(
            "vpo_stats_size_before_bytes_total",
            "Bytes of the files before processing, over finished runs whose size after is known.",
            labels=pn,
            unit="bytes",
        )
        after = CounterMetricFamily(
            "vpo_stats_size_after_bytes_total",
            "Bytes of the files after processing, over finished runs whose size after is known.",
            labels=pn,
            unit="bytes",
        )
        saved = GaugeMetricFamily(
            "vpo_stats_saved_bytes",
            "Net bytes saved on disk (size before minus size after; negative when files grew).",
            labels=pn,
            unit="bytes",
        )
        removed = CounterMetricFamily(
            "vpo_stats_tracks_removed_total",
            "Tracks removed from files, by track type.",
            labels=[*pn, "type"],
        )
        transcodes = CounterMetricFamily(
            "vpo_stats_video_transcodes_total",
            "Video transcodes done (succeeded runs with a target codec) and skipped.",
            labels=[*pn, "outcome"],
        )
        durations = HistogramMetricFamily(
            "vpo_stats_run_duration_seconds",
            "Wall time of finished runs that recorded one.",
            labels=pn,
            unit="seconds",
        )
        last = GaugeMetricFamily(
            "vpo_stats_last_run_timestamp_seconds",
            "Unix time the newest run of each node started.",
            labels=["node"],
            unit="seconds",
        )
        errors = CounterMetricFamily(
            "vpo_stats_recording_errors_total",
            "Events the plugin could not record (vpo-stats status lists their causes).",
        )

        for g in groups:
            if g["status"] in FINISHED:
                runs.add_metric([g["policy"] or "", g["node"], g["status"]], g["runs"])
        pairs, nodes = _fold(groups)
        for (policy, node), p in pairs.items():
            labels = [policy, node]
            before.add_metric(labels, p["size_before_bytes"])
            after.add_metric(labels, p["size_after_bytes"])
            saved.add_metric(labels, p["size_before_bytes"] - p["size_after_bytes"])
            for kind in TRACK_KINDS:
                removed.add_metric([*labels, kind], p[f"removed_{kind}"])
            transcodes.add_metric([*labels, "done"], p["videos_transcoded"])
            transcodes.add_metric([*labels, "skipped"], p["videos_transcode_skipped"])
            buckets = [(floatToGoString(b), n) for b, n in zip(DURATION_BOUNDS, p["buckets"])]
            buckets.append(("+Inf", p["timed_runs"]))
            durations.add_metric(labels, buckets, p["duration"])
        for node, n in sorted(nodes.items()):
            running.add_metric([node], n["running"])
            if n["last"]:
                last.add_metric([node], _epoch(n["last"]))
        errors.add_metric([], answer["recording_errors"])
        yield from (runs, running, before, after, saved, removed, transcodes, durations, last)
        yield errors


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format, or OpenMetrics when the scraper asks for it."""
    exporter: MetricsExporter = request.config_dict[METRICS]  # type: ignore[assignment]
    accept = request.headers.get("Accept", "")
    try:
        body, content_type = await asyncio.to_thread(exporter.exposition, accept)
    except StatsError as err:  # also where no error middleware runs (serve's root /metrics)
        return error_response(err.http_status, str(err))
    return web.Response(
        body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
    )
