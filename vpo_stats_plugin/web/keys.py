"""Typed keys under which the sub-application keeps its configuration."""

from __future__ import annotations

from aiohttp import web

SETTINGS = web.AppKey("vpo_stats_settings", object)
"""The settings object ``create_app`` was given, or loaded from the plugin config."""

READERS = web.AppKey("vpo_stats_readers", object)
"""The app's ``web.readers.Readers``: the stores its requests read with (the database from the
settings given to ``create_app``, and the ``open_store`` options they decide)."""

METRICS = web.AppKey("vpo_stats_metrics", object)
"""The app's ``web.metrics.MetricsExporter``: its own Prometheus registry (``GET /metrics``)."""
