"""The reference host's web app: an index page and every ``vpo.web`` plugin app mounted under it."""

from __future__ import annotations

import html
import logging
from importlib.metadata import entry_points

from aiohttp import web

from vpo_stats_plugin.refhost.host import list_plugins, make_plugin_manager

log = logging.getLogger(__name__)
MOUNTED = web.AppKey("mounted", list)
GROUP = "vpo.web"


def make_host_app() -> web.Application:
    """The host app with each ``vpo.web`` entry point's app at ``/<name>``; broken ones skipped."""
    app = web.Application()
    mounted: list[str] = []
    for ep in entry_points(group=GROUP):
        try:
            app.add_subapp(f"/{ep.name}", ep.load()())
        except Exception:  # one broken plugin must not take the host's web UI down
            log.exception("vpo: skipped web app %r (%s): it failed to load", ep.name, ep.value)
            continue
        mounted.append(ep.name)
    app[MOUNTED] = mounted
    app.router.add_get("/", _index)
    return app


async def _index(request: web.Request) -> web.Response:
    links = "".join(
        f'<li><a href="/{html.escape(name, quote=True)}/">{html.escape(name)}</a></li>'
        for name in request.app[MOUNTED]
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(p[k] or ''))}</td>" for k in ("name", "distribution", "version")
        )
        + f"<td>{html.escape(', '.join(p['hooks']))}</td></tr>"
        for p in list_plugins(make_plugin_manager())
    )
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>VPO reference host</title></head><body>"
        "<h1>VPO reference host</h1><h2>Plugin pages</h2>"
        f"<ul>{links or '<li>No plugin offers a web page.</li>'}</ul>"
        "<h2>Loaded plugins</h2><table><tr><th>name</th><th>distribution</th>"
        f"<th>version</th><th>hooks</th></tr>{rows}</table></body></html>"
    )
    return web.Response(text=body, content_type="text/html")
