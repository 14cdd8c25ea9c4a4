"""The aiohttp sub-application: dashboard page, JSON API and static assets.

A host mounts it with ``app.add_subapp("/stats", create_app())`` (entry point ``vpo.web``);
``vpo-stats serve`` mounts the same app on its own.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..dburl import as_database
from .errors import error_middleware
from .keys import METRICS, READERS, SETTINGS
from .metrics import MetricsExporter
from .readers import Readers
from .routes import add_routes

__all__ = ["create_app"]


def create_app(settings: Any = None) -> web.Application:
    """The stats sub-application; with no ``settings`` it reads the plugin config."""
    if settings is None:
        from ..config import for_reading

        # like the CLI: only the keys reading needs must be right; other problems stop recording
        settings = for_reading(warn=logging.getLogger("vpo_stats_plugin").warning)
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    # the database: a Path, or a URL (never a file name)
    readers = app[READERS] = Readers(as_database(settings.database), store_options(settings))
    app[METRICS] = MetricsExporter(readers)
    app.on_cleanup.append(_close_readers)
    add_routes(app)
    return app


async def _close_readers(app: web.Application) -> None:
    app[READERS].close()  # type: ignore[attr-defined]


def store_options(settings: Any) -> dict[str, Any]:
    """The ``open_store`` keywords the settings decide besides the path."""
    options: dict[str, Any] = {}
    node = getattr(settings, "node", None)
    if node:
        options["node"] = node
    stale = getattr(settings, "stale_after", None)
    if stale is not None:
        options["stale_after"] = stale.total_seconds() if hasattr(stale, "total_seconds") else stale
    return options
