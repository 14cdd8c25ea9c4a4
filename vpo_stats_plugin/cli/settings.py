"""The `config` command: every config key, its effective value and where it came from."""

from __future__ import annotations

from typing import Any

import click

from . import CliError, output_options, pass_context
from .output import emit, table


def _shown(row: dict[str, Any]) -> str:
    value = row["value"]
    if row["problem"] is not None:
        return f"{value!r} (bad)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if row["key"] == "stale_after" and isinstance(value, float):
        return _duration(value)
    return str(value)


def _duration(seconds: float) -> str:
    """86400.0 -> '24h', 172800.0 -> '2d', 90.0 -> '90s': whole units, days from two on."""
    for unit, size, least in (("d", 86400, 2 * 86400), ("h", 3600, 3600), ("m", 60, 60)):
        if seconds >= least and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def render_config(body: dict[str, Any]) -> str:
    """The config file line, then keys, values and sources."""
    file = body["file"]
    if file["path"] is None:
        where = "the [plugins.stats] the host gave"
    else:
        state = (
            "not valid"
            if not file["readable"]
            else ("found" if file["exists"] else "not found: defaults apply")
        )
        named = {"default": "default location", "host": "given by the host"}.get(
            file["named_by"], f"named by {file['named_by']}"
        )
        where = f"{file['path']} ({named}; {state})"
    rows = [[r["key"], _shown(r), r["source"]] for r in body["config"]]
    return f"config file: {where}\n" + table(["key", "value", "from"], rows)


@click.command(name="config")
@output_options
@pass_context
def config_command(ctx: Any, fmt: str) -> None:
    """The effective value of every config key and where it came from.

    Keys live in the `[plugins.stats]` section of ~/.vpo/config.toml (VPO_STATS_CONFIG names
    another file) and are overridden by VPO_STATS_<KEY> environment variables. A bad config is
    still shown as far as it can be read, with the problems on stderr, and exits 1.

    \b
    Examples:
      vpo-stats config
      VPO_STATS_HASH=full vpo-stats config --format json
    """
    from ..config import ConfigError, resolve

    resolved = resolve(ctx.overrides)
    emit(resolved.as_json(), fmt, render_config, lambda b: b["config"])
    if resolved.problems:
        raise CliError(ConfigError(resolved.message()))


COMMANDS = (config_command,)
