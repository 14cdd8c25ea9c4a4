"""Reading commands: summary, policies, policy, nodes, recent, file, detail, trend."""

from __future__ import annotations

import os
from typing import Any

import click

from . import filter_options, handle_errors, make_filters, output_options, pass_context
from .output import emit
from .render import (
    render_detail,
    render_nodes,
    render_policies,
    render_policy,
    render_run_list,
    render_summary,
    render_trend,
)

# CSV headers, so an empty answer still has one (the rows may add fields after these)
POLICY_COLUMNS = (
    "policy", "runs", "succeeded", "failed", "interrupted", "running", "size_before_bytes",
    "size_after_bytes", "saved_bytes", "saved_percent", "last_run_at",
)  # fmt: skip
NODE_COLUMNS = ("node", *POLICY_COLUMNS[1:])
TREND_COLUMNS = (
    "period", "runs", "succeeded", "failed", "interrupted", "running", "size_before_bytes",
    "size_after_bytes", "saved_bytes",
)  # fmt: skip
RUN_COLUMNS = (
    "id", "job_id", "file_id", "path", "output_path", "policy", "node", "status", "started_at",
    "finished_at", "duration_seconds", "size_before_bytes", "size_after_bytes", "saved_bytes",
    *(f"tracks_{w}_{k}" for w in ("before", "after") for k in ("video", "audio", "subtitle", "attachment")),
    "video_source_codec", "video_target_codec", "video_transcode_skipped", "video_skip_reason",
    "audio_tracks_transcoded", "audio_tracks_preserved", "encoder_type", "phases_completed",
    "phases_total", "total_changes", "hash_before", "hash_after", "error", "source",
)  # fmt: skip


@click.command()
@filter_options
@output_options
@pass_context
@handle_errors
def summary(ctx: Any, fmt: str, **filters: Any) -> None:
    """Totals over the recorded runs: files, space saved, tracks removed, failures, time.

    Sizes count every finished run whose size after is known, failed ones included (the net
    change on disk).

    \b
    Examples:
      vpo-stats summary
      vpo-stats summary --since 30d --policy "Strip foreign audio"
      vpo-stats summary --until 2026-06-30 --format json
    """
    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        body = store.summary(chosen)
    emit(body, fmt, render_summary)


SORT_OPTION = click.option(
    "--sort",
    type=click.Choice(("runs", "saved", "name")),
    default="runs",
    show_default=True,
    help="Order of the rows: most runs, most bytes saved, or by name.",
)


def _emit_policies(body: dict[str, Any], fmt: str) -> None:
    emit(body, fmt, render_policies, lambda b: b["policies"], POLICY_COLUMNS)


@click.command()
@SORT_OPTION
@filter_options
@output_options
@pass_context
@handle_errors
def policies(ctx: Any, sort: str, fmt: str, **filters: Any) -> None:
    """One row per policy: runs, failures, bytes before and after, space saved.

    \b
    Examples:
      vpo-stats policies --sort saved
      vpo-stats policies --since 2026-01-01 --format csv
    """
    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        body = store.policies(chosen, sort)
    _emit_policies(body, fmt)


@click.command()
@click.argument("name", required=False)
@SORT_OPTION
@filter_options
@output_options
@pass_context
@handle_errors
def policy(ctx: Any, name: str | None, sort: str, fmt: str, **filters: Any) -> None:
    """One policy: its totals and what its actions did, by action type.

    With no NAME, the same list as `policies` (--sort applies to it). Exit status 64 when the
    policy has no runs (with these filters).

    \b
    Examples:
      vpo-stats policy "Strip foreign audio"
      vpo-stats policy anime --since 90d --format json
    """
    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        if name is None:
            _emit_policies(store.policies(chosen, sort), fmt)
            return
        body = store.policy(name, chosen)
    emit(body, fmt, render_policy, lambda b: [b], (*POLICY_COLUMNS, "actions"))


@click.command()
@SORT_OPTION
@filter_options
@output_options
@pass_context
@handle_errors
def nodes(ctx: Any, sort: str, fmt: str, **filters: Any) -> None:
    """One row per node (machine): runs by status, bytes before and after, space saved.

    A node is the name each machine records its runs under (the `node` setting, its host name
    by default); several nodes share one history through a PostgreSQL server.

    \b
    Examples:
      vpo-stats nodes
      vpo-stats nodes --since 7d --sort saved
      vpo-stats nodes --policy anime --format csv
    """
    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        body = store.nodes(chosen, sort)
    emit(body, fmt, render_nodes, lambda b: b["nodes"], NODE_COLUMNS)


def _emit_runs(body: dict[str, Any], fmt: str) -> None:
    emit(body, fmt, render_run_list, lambda b: b["runs"], RUN_COLUMNS)


@click.command()
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="How many runs (1-1000).",
)
@filter_options
@output_options
@pass_context
@handle_errors
def recent(ctx: Any, limit: int, fmt: str, **filters: Any) -> None:
    """The newest runs first, failures in red with their errors below the table.

    \b
    Examples:
      vpo-stats recent
      vpo-stats recent --status failed --limit 50
      vpo-stats recent --node nas-1 --format csv
    """
    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        body = store.recent(chosen, limit)
    _emit_runs(body, fmt)


@click.command(name="file")
@click.argument("path")
@filter_options
@output_options
@pass_context
@handle_errors
def file_history(ctx: Any, path: str, fmt: str, **filters: Any) -> None:
    """Every run of one file, oldest first (PATH is its path before or after processing).

    A relative PATH is also looked up as an absolute one. Exit status 64 when the file has no
    runs (with these filters).

    \b
    Examples:
      vpo-stats file /media/movies/Heat.mkv
      vpo-stats file ./Heat.mkv --format json
    """
    from ..errors import NotFound

    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        try:
            body = store.file_runs(path, chosen)
        except NotFound:
            absolute = os.path.abspath(os.path.expanduser(path))
            if absolute == path:
                raise
            body = store.file_runs(absolute, chosen)
    _emit_runs(body, fmt)


@click.command()
@click.argument("run_id")
@output_options
@pass_context
@handle_errors
def detail(ctx: Any, run_id: str, fmt: str) -> None:
    """One run with its actions and phases; 8 or more leading characters of the id are enough.

    `vpo-stats recent` shows the first 8 characters of each run's id. Exit status 64 when no
    run has that id.

    \b
    Examples:
      vpo-stats detail 3f2a9c1b
      vpo-stats detail 3f2a9c1b-6d0e-4c1b-9a57-0c3f1e2d4b6a --format json
    """
    with ctx.open_store() as store:
        body = store.run(run_id)
    emit(body, fmt, render_detail)


@click.command()
@click.option(
    "--by",
    type=click.Choice(("day", "week", "month")),
    default="day",
    show_default=True,
    help="Period of each point: UTC day, week (named by its Monday) or month.",
)
@filter_options
@output_options
@pass_context
@handle_errors
def trend(ctx: Any, by: str, fmt: str, **filters: Any) -> None:
    """Runs and space saved per day, week or month (only periods that have runs).

    \b
    Examples:
      vpo-stats trend --since 30d
      vpo-stats trend --by month --policy anime --format csv
    """
    chosen = make_filters(**filters)
    with ctx.open_store() as store:
        body = store.trend(chosen, by)
    emit(body, fmt, render_trend, lambda b: b["points"], TREND_COLUMNS)


COMMANDS = (summary, policies, policy, nodes, recent, file_history, detail, trend)
