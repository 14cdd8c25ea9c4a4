"""Reading commands: summary, policies, policy, recent, file, detail, trend."""

from __future__ import annotations

import os
from typing import Any

import click

from . import filter_options, handle_errors, make_filters, output_options, pass_context
from .output import (
    emit,
    human_bytes,
    human_duration,
    human_time,
    pairs,
    status_text,
    table,
)


def _percent(value: float) -> str:
    return f"{value:.1f}%"


def _saved_line(body: dict[str, Any]) -> str:
    return (
        f"{human_bytes(body['saved_bytes'])} ({_percent(body['saved_percent'])}) "
        f"of {human_bytes(body['size_before_bytes'])}"
    )


def _filters_note(body: dict[str, Any]) -> str:
    active = {k: v for k, v in (body.get("filters") or {}).items() if v}
    if not active:
        return ""
    return "\n" + click.style(
        "filters: " + ", ".join(f"{k}={v}" for k, v in active.items()), dim=True
    )


def render_summary(body: dict[str, Any]) -> str:
    """The summary as a block people read."""
    if not body["runs"]:
        return "No runs recorded yet: process a file with the plugin enabled." + _filters_note(body)
    removed = body["tracks_removed"]
    finished = body["succeeded"] + body["failed"]
    rate = f" ({body['succeeded'] * 100 / finished:.1f}% succeeded)" if finished else ""
    items = [
        ("runs", f"{body['runs']}{rate}"),
        ("files", body["files"]),
        ("succeeded", body["succeeded"]),
        ("failed", click.style(str(body["failed"]), fg="red") if body["failed"] else 0),
        ("interrupted", body["interrupted"]),
        ("running", body["running"]),
        ("space saved", _saved_line(body)),
        ("size after", human_bytes(body["size_after_bytes"])),
        (
            "tracks removed",
            f"{removed['audio']} audio, {removed['subtitle']} subtitle, "
            f"{removed['attachment']} attachment",
        ),
        (
            "video transcodes",
            f"{body['videos_transcoded']} done, {body['videos_transcode_skipped']} skipped",
        ),
        (
            "audio tracks",
            f"{body['audio_tracks_transcoded']} transcoded, "
            f"{body['audio_tracks_preserved']} preserved",
        ),
        (
            "time spent",
            f"{human_duration(body['duration_seconds']['total'])} "
            f"(mean {human_duration(body['duration_seconds']['mean'])} a run)",
        ),
        ("first run", human_time(body["first_run_at"])),
        ("last run", human_time(body["last_run_at"])),
    ]
    return pairs(items) + _filters_note(body)


@click.command()
@filter_options
@output_options
@pass_context
@handle_errors
def summary(ctx: Any, fmt: str, **filters: Any) -> None:
    """Totals over the recorded runs: files, space saved, tracks removed, failures, time.

    \b
    Examples:
      vpo-stats summary
      vpo-stats summary --since 30d --policy "Strip foreign audio"
      vpo-stats summary --format json
    """
    with ctx.open_store() as store:
        body = store.summary(make_filters(**filters))
    emit(body, fmt, render_summary)


def _policy_rows(rows: list[dict[str, Any]]) -> str:
    return table(
        ["policy", "runs", "ok", "failed", "before", "after", "saved", "saved %", "last run"],
        [
            [
                r["policy"] if r["policy"] is not None else "(none)",
                r["runs"],
                r["succeeded"],
                click.style(str(r["failed"]), fg="red") if r["failed"] else 0,
                human_bytes(r["size_before_bytes"]),
                human_bytes(r["size_after_bytes"]),
                human_bytes(r["saved_bytes"]),
                _percent(r["saved_percent"]),
                human_time(r["last_run_at"]),
            ]
            for r in rows
        ],
        right=(1, 2, 3, 4, 5, 6, 7),
    )


def render_policies(body: dict[str, Any]) -> str:
    """Policies as a table."""
    if not body["policies"]:
        return "No runs recorded yet: process a file with the plugin enabled." + _filters_note(body)
    return _policy_rows(body["policies"]) + _filters_note(body)


@click.command()
@click.option(
    "--sort",
    type=click.Choice(("runs", "saved", "name")),
    default="runs",
    show_default=True,
    help="Order of the rows.",
)
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
    with ctx.open_store() as store:
        body = store.policies(make_filters(**filters), sort)
    emit(body, fmt, render_policies, lambda b: b["policies"])


def render_policy(body: dict[str, Any]) -> str:
    """One policy's totals and its actions by type."""
    head = pairs(
        [
            ("policy", body["policy"]),
            ("runs", body["runs"]),
            ("succeeded", body["succeeded"]),
            ("failed", body["failed"]),
            ("interrupted", body["interrupted"]),
            ("space saved", _saved_line(body)),
            ("last run", human_time(body["last_run_at"])),
        ]
    )
    if not body["actions"]:
        return head + "\n\nNo actions recorded for this policy." + _filters_note(body)
    actions = table(
        ["action", "count", "failed"],
        [[a["type"] or "(none)", a["count"], a["failed"]] for a in body["actions"]],
        right=(1, 2),
    )
    return head + "\n\n" + actions + _filters_note(body)


@click.command()
@click.argument("name", required=False)
@click.option(
    "--sort",
    type=click.Choice(("runs", "saved", "name")),
    default="runs",
    show_default=True,
    help="Order of the rows when no NAME is given.",
)
@filter_options
@output_options
@pass_context
@handle_errors
def policy(ctx: Any, name: str | None, sort: str, fmt: str, **filters: Any) -> None:
    """One policy: its totals and what its actions did, by action type.

    With no NAME, the same list as `policies`.

    \b
    Examples:
      vpo-stats policy "Strip foreign audio"
      vpo-stats policy anime --since 90d --format json
    """
    with ctx.open_store() as store:
        if name is None:
            body = store.policies(make_filters(**filters), sort)
            emit(body, fmt, render_policies, lambda b: b["policies"])
            return
        body = store.policy(name, make_filters(**filters))
    emit(body, fmt, render_policy, lambda b: [{k: v for k, v in b.items() if k != "actions"}])


def render_runs(runs: list[dict[str, Any]]) -> str:
    """Runs as a table, failures in red."""
    return table(
        ["started (UTC)", "status", "policy", "before", "after", "saved", "took", "run", "path"],
        [
            [
                human_time(r["started_at"]),
                status_text(r["status"]),
                r["policy"] or "-",
                human_bytes(r["size_before_bytes"]),
                human_bytes(r["size_after_bytes"]),
                human_bytes(r["saved_bytes"]),
                human_duration(r["duration_seconds"]),
                r["id"][:8],
                r["path"],
            ]
            for r in runs
        ],
        right=(3, 4, 5, 6),
    )


def render_run_list(body: dict[str, Any]) -> str:
    """A `{"runs": [...]}` answer as a table."""
    if not body["runs"]:
        return "No runs match." + _filters_note(body)
    errors = [
        f"  {r['id'][:8]}  {r['error']}"
        for r in body["runs"]
        if r["status"] == "failed" and r["error"]
    ]
    text = render_runs(body["runs"])
    if errors:
        text += "\n\n" + click.style("errors:", fg="red") + "\n" + "\n".join(errors)
    return text + _filters_note(body)


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
    """The newest runs first, failures highlighted.

    \b
    Examples:
      vpo-stats recent
      vpo-stats recent --status failed --limit 50
      vpo-stats recent --node nas-1 --format csv
    """
    with ctx.open_store() as store:
        body = store.recent(make_filters(**filters), limit)
    emit(body, fmt, render_run_list, lambda b: b["runs"])


@click.command(name="file")
@click.argument("path")
@filter_options
@output_options
@pass_context
@handle_errors
def file_history(ctx: Any, path: str, fmt: str, **filters: Any) -> None:
    """Every run of one file, oldest first (by its path before or after processing).

    \b
    Examples:
      vpo-stats file /media/movies/Heat.mkv
      vpo-stats file ./Heat.mkv --format json
    """
    from ..errors import NotFound

    with ctx.open_store() as store:
        chosen = make_filters(**filters)
        try:
            body = store.file_runs(path, chosen)
        except NotFound:
            absolute = os.path.abspath(path)
            if absolute == path:
                raise
            body = store.file_runs(absolute, chosen)
    emit(body, fmt, render_run_list, lambda b: b["runs"])


def render_detail(run: dict[str, Any]) -> str:
    """One run with its actions and phases."""
    before, after = run["tracks_before"], run["tracks_after"]

    def tracks(counts: dict[str, Any]) -> str:
        return ", ".join(f"{counts[k] if counts[k] is not None else '?'} {k}" for k in counts)

    items = [
        ("run", run["id"]),
        ("status", status_text(run["status"])),
        ("path", run["path"]),
        ("output", run["output_path"] or "-"),
        ("policy", run["policy"] or "-"),
        ("node", run["node"]),
        ("source", run["source"]),
        ("started", human_time(run["started_at"])),
        ("finished", human_time(run["finished_at"])),
        ("took", human_duration(run["duration_seconds"])),
        (
            "size",
            f"{human_bytes(run['size_before_bytes'])} -> {human_bytes(run['size_after_bytes'])}",
        ),
        ("saved", human_bytes(run["saved_bytes"])),
        ("tracks before", tracks(before)),
        ("tracks after", tracks(after)),
        (
            "video",
            f"{run['video_source_codec'] or '?'} -> {run['video_target_codec'] or '-'}"
            + (f" (skipped: {run['video_skip_reason']})" if run["video_transcode_skipped"] else ""),
        ),
        ("encoder", run["encoder_type"] or "-"),
        (
            "phases",
            f"{run['phases_completed'] if run['phases_completed'] is not None else '?'}"
            f" of {run['phases_total'] if run['phases_total'] is not None else '?'}",
        ),
        ("changes", run["total_changes"] if run["total_changes"] is not None else "-"),
    ]
    if run["error"]:
        items.append(("error", click.style(run["error"], fg="red")))
    text = pairs(items)
    if run["actions"]:
        text += "\n\nactions\n" + table(
            ["#", "action", "track", "ok", "took", "rule", "message"],
            [
                [
                    i,
                    a["type"] or "-",
                    f"{a['track_type'] or ''}{'' if a['track_index'] is None else ' #' + str(a['track_index'])}"
                    or "-",
                    "yes" if a["success"] else click.style("no", fg="red"),
                    "-" if a["duration_ms"] is None else f"{a['duration_ms']:.0f} ms",
                    a["rule"] or "-",
                    a["message"] or "",
                ]
                for i, a in enumerate(run["actions"], 1)
            ],
            right=(0, 4),
        )
    if run["phases"]:
        text += "\n\nphases\n" + table(
            ["phase", "wall time", "read", "written", "fps", "bitrate"],
            [
                [
                    p["name"] or "-",
                    human_duration(p["wall_time_seconds"]),
                    human_bytes(p["bytes_read"]),
                    human_bytes(p["bytes_written"]),
                    "-" if p["encoding_fps"] is None else f"{p['encoding_fps']:.1f}",
                    "-"
                    if p["encoding_bitrate"] is None
                    else f"{p['encoding_bitrate'] / 1000:.0f} kb/s",
                ]
                for p in run["phases"]
            ],
            right=(1, 2, 3, 4, 5),
        )
    return text


@click.command()
@click.argument("run_id")
@output_options
@pass_context
@handle_errors
def detail(ctx: Any, run_id: str, fmt: str) -> None:
    """One run with its actions and phases; 8 or more leading characters of the id are enough.

    \b
    Examples:
      vpo-stats detail 3f2a9c1b
      vpo-stats detail 3f2a9c1b-6d0e-4c1b-9a57-0c3f1e2d4b6a --format json
    """
    with ctx.open_store() as store:
        body = store.run(run_id)
    emit(body, fmt, render_detail)


def render_trend(body: dict[str, Any]) -> str:
    """Periods as a table with a bar of space saved."""
    if not body["points"]:
        return "No runs in this range." + _filters_note(body)
    top = max((max(p["saved_bytes"], 0) for p in body["points"]), default=0) or 1
    return table(
        [body["by"], "runs", "ok", "failed", "saved", ""],
        [
            [
                p["period"],
                p["runs"],
                p["succeeded"],
                click.style(str(p["failed"]), fg="red") if p["failed"] else 0,
                human_bytes(p["saved_bytes"]),
                "#" * max(0, round(20 * p["saved_bytes"] / top)),
            ]
            for p in body["points"]
        ],
        right=(1, 2, 3, 4),
    ) + _filters_note(body)


@click.command()
@click.option(
    "--by",
    type=click.Choice(("day", "week", "month")),
    default="day",
    show_default=True,
    help="Period of each point (week = its Monday).",
)
@filter_options
@output_options
@pass_context
@handle_errors
def trend(ctx: Any, by: str, fmt: str, **filters: Any) -> None:
    """Runs and space saved per day, week or month.

    \b
    Examples:
      vpo-stats trend --since 30d
      vpo-stats trend --by month --policy anime --format csv
    """
    with ctx.open_store() as store:
        body = store.trend(make_filters(**filters), by)
    emit(body, fmt, render_trend, lambda b: b["points"])


COMMANDS = (summary, policies, policy, recent, file_history, detail, trend)
