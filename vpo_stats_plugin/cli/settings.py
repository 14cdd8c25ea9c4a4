"""The `config` command: every config key, its effective value and where it came from."""

from __future__ import annotations

from typing import Any

import click

from . import handle_errors, output_options, pass_context
from .output import emit, table


def render_config(rows: list[dict[str, Any]]) -> str:
    """Config keys, values and sources."""
    return table(["key", "value", "from"], [[r["key"], r["value"], r["source"]] for r in rows])


@click.command(name="config")
@output_options
@pass_context
@handle_errors
def config_command(ctx: Any, fmt: str) -> None:
    """The effective value of every config key and where it came from.

    Keys live in the `[plugins.stats]` section of ~/.vpo/config.toml (VPO_STATS_CONFIG names
    another file) and are overridden by VPO_STATS_<KEY> environment variables.

    \b
    Examples:
      vpo-stats config
      VPO_STATS_HASH=full vpo-stats config --format json
    """
    from ..config import describe

    rows = describe(ctx.settings, ctx.sources)
    body = {"config": rows}
    emit(body, fmt, lambda b: render_config(b["config"]), lambda b: b["config"])


COMMANDS = (config_command,)
