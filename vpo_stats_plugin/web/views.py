"""Request handlers: parse parameters, ask the store in a thread, answer its dict as JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from ..errors import BadParameter
from ..store import Store
from ..store.names import name_of
from . import params
from .codecs import codec_transitions
from .errors import error_response
from .keys import READERS
from .openapi import openapi_document

T = TypeVar("T")
PAGE = Path(__file__).parent / "templates" / "index.html"
STATIC = (Path(__file__).parent / "static").resolve()
TEXT_SUFFIXES = (".md", ".txt")
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    ),
    "Cache-Control": "no-cache",
}


async def ask(request: web.Request, question: Callable[[Store], T]) -> T:
    """Run ``question`` against the store in a worker thread."""
    readers = request.config_dict[READERS]
    return await asyncio.to_thread(readers.ask, question)  # type: ignore[attr-defined]


def answer(body: Any) -> web.Response:
    """A JSON answer of a store dict, as it is."""
    return web.json_response(body)


async def index(request: web.Request) -> web.StreamResponse:
    """The dashboard page; its URLs are relative, so it works wherever the app is mounted."""
    return web.FileResponse(PAGE, headers=PAGE_HEADERS)


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file under ``static/`` (the page's script, styles and the vendored chart library)."""
    target = (STATIC / request.match_info["path"]).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "no-cache"}
    if target.suffix in TEXT_SUFFIXES:
        # the vendored licence and readme: shown by the browser, not downloaded (text/markdown is)
        headers["Content-Type"] = "text/plain; charset=utf-8"
    return web.FileResponse(target, headers=headers)


async def summary(request: web.Request) -> web.Response:
    """``GET /api/summary``: totals over the filtered runs."""
    filters = params.filters_from_query(request.query)
    return answer(await ask(request, lambda store: store.summary(filters)))


async def policies(request: web.Request) -> web.Response:
    """``GET /api/policies``: one row per policy."""
    filters = params.filters_from_query(request.query)
    sort = params.choice_from_query(request.query, "sort", params.SORT_CHOICES, "runs")
    return answer(await ask(request, lambda store: store.policies(filters, sort=sort)))


async def nodes(request: web.Request) -> web.Response:
    """``GET /api/nodes``: one row per node."""
    filters = params.filters_from_query(request.query)
    sort = params.choice_from_query(request.query, "sort", params.SORT_CHOICES, "runs")
    return answer(await ask(request, lambda store: store.nodes(filters, sort=sort)))


async def policy(request: web.Request) -> web.Response:
    """``GET /api/policies/{name}``: one policy's totals and its actions by type."""
    return await one_policy(request, request.match_info["name"], "the path")


async def policy_by_query(request: web.Request) -> web.Response:
    """``GET /api/policy?name=``: the same, for names a path cannot carry (``.``, ``..``)."""
    name = params.required_from_query(request.query, "name")
    return await one_policy(request, name, "the query parameter name")


async def one_policy(request: web.Request, name: str, named_by: str) -> web.Response:
    name = name_of(name)  # as the answers show it
    filters = params.filters_from_query(request.query)
    if filters.policy is not None and filters.policy != name:
        raise BadParameter(
            "policy",
            f"the query parameter policy={filters.policy!r} contradicts the policy {name!r} "
            f"in {named_by}; leave policy out",
        )
    return answer(await ask(request, lambda store: store.policy(name, filters)))


async def recent(request: web.Request) -> web.Response:
    """``GET /api/recent``: newest runs first."""
    filters = params.filters_from_query(request.query)
    limit = params.limit_from_query(request.query)
    return answer(await ask(request, lambda store: store.recent(filters, limit=limit)))


async def trend(request: web.Request) -> web.Response:
    """``GET /api/trend``: one point per day, week or month."""
    filters = params.filters_from_query(request.query)
    by = params.choice_from_query(request.query, "by", params.BY_CHOICES, "day")
    return answer(await ask(request, lambda store: store.trend(filters, by=by)))


async def codecs(request: web.Request) -> web.Response:
    """``GET /api/codecs``: video codec transitions over the filtered runs (dashboard extra)."""
    filters = params.filters_from_query(request.query)
    return answer(await ask(request, lambda store: codec_transitions(store, filters)))


async def file_runs(request: web.Request) -> web.Response:
    """``GET /api/files?path=``: every run of one file, oldest first."""
    path = name_of(params.required_from_query(request.query, "path"))  # as the answers show it
    filters = params.filters_from_query(request.query)
    return answer(await ask(request, lambda store: store.file_runs(path, filters)))


async def run(request: web.Request) -> web.Response:
    """``GET /api/runs/{id}``: one run with its actions and phases."""
    run_id = params.run_id(request.match_info["id"])
    return answer(await ask(request, lambda store: store.run(run_id)))


async def purge(request: web.Request) -> web.Response:
    """``POST /api/purge``: count (dry run, the default) or delete the matching runs; with the
    token of a dry run, only the runs it counted (409 when they changed)."""
    refusal = cross_site_refusal(request)
    if refusal:
        return error_response(403, refusal)
    wanted = params.purge_request(await request.read())

    def purge(store: Store) -> dict[str, Any]:
        return store.purge(
            wanted.filters,
            all=wanted.all,
            dry_run=wanted.dry_run,
            at=wanted.at,
            expect=wanted.token,
        )

    return answer(await ask(request, purge))


def cross_site_refusal(request: web.Request) -> str | None:
    """Why a state-changing request comes from another site, or None when it does not."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return "cross-site request refused: purge from the dashboard itself or from a script"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    if origin == "null" or not parts.netloc or parts.netloc.lower() != request.host.lower():
        return f"request from origin {origin!r} refused: purge from the dashboard itself"
    return None


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the OpenAPI document of this API."""
    suffix = "/api/openapi.json"
    base = request.path[: -len(suffix)] if request.path.endswith(suffix) else ""
    return web.json_response(openapi_document(server_url=base or "/"))
