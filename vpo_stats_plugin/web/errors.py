"""One error body for every failing request, and the middleware that produces it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import StatsError

log = logging.getLogger("vpo_stats_plugin.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def error_body(message: str) -> dict[str, str]:
    """The JSON body of every error answer: ``{"error": message}``."""
    return {"error": message}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error answer with ``status``."""
    return web.json_response(
        error_body(message), status=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map ``StatsError``, HTTP errors and anything unexpected to ``{"error": ...}``."""
    try:
        response = await handler(request)
    except StatsError as err:
        return error_response(err.http_status, getattr(err, "web_message", str(err)))
    except web.HTTPException as err:
        if err.status < 400:
            raise
        if err.status == 404 and _is_mount_point(request):
            # "/stats" without its slash: the page's relative URLs need "/stats/"
            target = request.rel_url.with_path(request.path + "/").with_query(request.query_string)
            raise web.HTTPPermanentRedirect(target) from None
        allow = {"Allow": err.headers["Allow"]} if "Allow" in err.headers else None
        return error_response(err.status, _http_message(request, err), allow)
    except Exception:
        # the traceback goes to the server's log, never to the client
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal error: the server log has the details")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _is_mount_point(request: web.Request) -> bool:
    """True for the sub-app's own path without its trailing slash (``/stats``)."""
    if request.method not in ("GET", "HEAD") or "index" not in request.app.router:
        return False
    return request.path + "/" == request.app.router["index"].url_for().path


def _http_message(request: web.Request, err: web.HTTPException) -> str:
    if err.status == 404:
        return f"not found: {request.path}"
    if err.status == 405:
        allowed = ", ".join(sorted(getattr(err, "allowed_methods", ()) or ()))
        return f"method {request.method} not allowed here; use {allowed}"
    text = err.text or ""
    return text if text and not text.startswith(f"{err.status}:") else err.reason
