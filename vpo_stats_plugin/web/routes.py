"""Every route of the sub-application, named, in one list."""

from __future__ import annotations

from aiohttp import web

from . import metrics, views


def add_routes(app: web.Application) -> None:
    """Register the page, the JSON API and the static files on ``app``."""
    app.add_routes(
        [
            web.get("/", views.index, name="index"),
            web.get("/api/summary", views.summary, name="summary"),
            web.get("/api/policies", views.policies, name="policies"),
            web.get("/api/policies/{name}", views.policy, name="policy"),
            web.get("/api/policy", views.policy_by_query, name="policy-by-query"),
            web.get("/api/nodes", views.nodes, name="nodes"),
            web.get("/api/recent", views.recent, name="recent"),
            web.get("/api/trend", views.trend, name="trend"),
            web.get("/api/codecs", views.codecs, name="codecs"),
            web.get("/api/files", views.file_runs, name="files"),
            web.get("/api/runs/{id}", views.run, name="run"),
            web.post("/api/purge", views.purge, name="purge"),
            web.get("/api/openapi.json", views.openapi, name="openapi"),
            web.get("/metrics", metrics.metrics, name="metrics"),
            web.get("/static/{path:.+}", views.static_file, name="static"),
        ]
    )
