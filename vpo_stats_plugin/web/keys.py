"""Typed keys under which the sub-application keeps its configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

DATABASE = web.AppKey("vpo_stats_database", Path)
"""The SQLite file every request reads (from the settings given to ``create_app``)."""

STORE_OPTIONS = web.AppKey("vpo_stats_store_options", dict[str, Any])
"""Keyword arguments for ``open_store`` besides the path (node, stale_after)."""

SETTINGS = web.AppKey("vpo_stats_settings", object)
"""The settings object ``create_app`` was given, or loaded from the plugin config."""

READERS = web.AppKey("vpo_stats_readers", object)
"""The app's ``web.readers.Readers``: the stores its requests read with."""

METRICS = web.AppKey("vpo_stats_metrics", object)
"""The app's ``web.metrics.MetricsExporter``: its own Prometheus registry (``GET /metrics``)."""
