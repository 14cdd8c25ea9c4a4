"""`vpo-stats serve`: the dashboard and JSON API on their own, for hosts without a web UI."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import StatsContext, handle_errors, pass_context

MOUNT = "/stats"


def is_loopback(host: str | None) -> bool:
    """True when ``host`` names this machine only (localhost or a loopback address)."""
    name = (host or "").strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def make_root_app(settings: Any, host: str = "127.0.0.1") -> Any:
    """The standalone web app: the stats sub-app at ``/stats``, ``/`` redirecting there, and its
    ``/metrics`` at ``/metrics`` as well.

    Bound to a loopback address, it also refuses requests naming another host (so a web page
    cannot reach it through DNS rebinding).
    """
    from aiohttp import web
    from yarl import URL

    from ..web import create_app, metrics
    from ..web.keys import METRICS

    @web.middleware
    async def loopback_names_only(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            asked = URL(f"http://{request.host}").host
        except ValueError:
            asked = None
        if not is_loopback(asked):
            return web.json_response(
                {"error": f"host {request.host!r} refused: open http://127.0.0.1 or localhost"},
                status=403,
            )
        return await handler(request)

    async def to_dashboard(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(MOUNT + "/")

    root = web.Application(middlewares=[loopback_names_only] if is_loopback(host) else [])
    root.router.add_get("/", to_dashboard)
    stats = create_app(settings)
    root.add_subapp(MOUNT, stats)
    # Prometheus scrapes /metrics by default: the sub-app's own endpoint, at the root too
    root[METRICS] = stats[METRICS]
    root.router.add_get("/metrics", metrics.metrics, name="metrics")
    return root


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8321, show_default=True, help="TCP port."
)
@pass_context
@handle_errors
def serve(ctx: StatsContext, host: str, port: int) -> None:
    """Serve the dashboard and the JSON API at /stats/ until Ctrl-C.

    127.0.0.1 keeps it on this machine; --host 0.0.0.0 shares it with your network (there
    is no login: whoever reaches it can read the stats and purge them).

    \b
    Examples:
      vpo-stats serve
      vpo-stats --db /srv/vpo/stats.db serve --port 9000
    """
    from aiohttp import web

    settings = ctx.settings
    app = make_root_app(settings, host)
    database = settings.database
    where = f"database {database}"  # a URL's str() masks its password
    if isinstance(database, Path) and not database.expanduser().exists():
        where += ": none yet, the dashboard fills in once a host records runs"

    def announce(addresses: list[Any]) -> None:
        bound, bound_port = addresses[0][0], addresses[0][1]  # port 0: the one chosen
        shown = f"[{bound}]" if ":" in bound else bound
        click.echo(f"Dashboard: http://{shown}:{bound_port}{MOUNT}/   ({where})")
        click.echo(f"API:       http://{shown}:{bound_port}{MOUNT}/api/openapi.json")
        click.echo(f"Metrics:   http://{shown}:{bound_port}/metrics (Prometheus)   Ctrl-C stops.")

    try:
        asyncio.run(_serve(app, host, port, announce))
    except (web.GracefulExit, KeyboardInterrupt):  # Ctrl-C or SIGTERM: stopped, as asked
        pass
    except OSError as err:
        raise click.ClickException(listen_error(err, host, port)) from None


async def _serve(app: Any, host: str, port: int, announce: Callable[[list[Any]], None]) -> None:
    """Listen on ``host``:``port``, announce the addresses bound, then serve until stopped."""
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        announce(runner.addresses)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def listen_error(err: OSError, host: str, port: int) -> str:
    """What went wrong binding ``host``:``port``, and what to do about it."""
    if isinstance(err, socket.gaierror):
        return (
            f"cannot listen on --host {host}: no such host or address ({err.strerror or err}). "
            "Give a name or address of this machine, e.g. 127.0.0.1 (the default)."
        )
    why = os.strerror(err.errno) if err.errno else str(err)  # asyncio's own text repeats host
    if err.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on --host {host}: it is not an address of this machine ({why}). "
            "Give one of its own, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network)."
        )
    if err.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {host}:{port}: {why}. "
            "Choose another --port, or stop what is using it."
        )
    if err.errno == errno.EACCES:
        return (
            f"cannot listen on {host}:{port}: {why} (ports below 1024 need privileges). "
            "Choose another --port."
        )
    return f"cannot listen on {host}:{port}: {why}. Check --host and --port."
