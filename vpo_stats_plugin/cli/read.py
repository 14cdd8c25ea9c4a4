"""Reading commands: summary, policies, policy, recent, file, detail, trend."""

from __future__ import annotations

import os
from typing import Any

import click

from . import filter_options, handle_errors, make_filters, output_options, pass_context
from .output import (
    clean,
    emit,
    human_bytes,
    human_duration,
    human_time,
    last_line,
    pairs,
    status_text,
    table,
)

# CSV headers, so an empty answer still has one (the rows may add fields after these)
POLICY_COLUMNS = (
    "policy", "runs", "succeeded", "failed", "interrupted", "running", "size_before_bytes",
    "size_after_bytes", "saved_bytes", "saved_percent", "last_run_at",
)  # fmt: skip
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
NO_RUNS = "No runs recorded yet: process a file with the plugin enabled."


def _percent(value: float) -> str:
    return f"{value:.1f}%"


def _red(value: int) -> Any:
    """A failure count: red when there are failures, so they show at a glance."""
    return click.style(str(value), fg="red", bold=True) if value else 0


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
        "filters: " + ", ".join(f"{k}={clean(v)}" for k, v in active.items()), dim=True
    )


def _empty(body: dict[str, Any]) -> str:
    """What an empty answer says: nothing recorded at all, or nothing matching the filters."""
    if any((body.get("filters") or {}).values()):
        return "No runs match these filters." + _filters_note(body)
    return NO_RUNS


def render_summary(body: dict[str, Any]) -> str:
    """The summary as a block people read."""
    if not body["runs"]:
        return _empty(body)
    removed = body["tracks_removed"]
    finished = body["succeeded"] + body["failed"]
    rate = f" ({body['succeeded'] * 100 / finished:.1f}% of finished succeeded)" if finished else ""
    items = [
        ("runs", f"{body['runs']}{rate}"),
        ("files", body["files"]),
        ("succeeded", body["succeeded"]),
        ("failed", _red(body["failed"])),
        (
            "interrupted",
            click.style(str(body["interrupted"]), fg="yellow") if body["interrupted"] else 0,
        ),
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
        ("first run", human_time(body["first_run_at"]) + " UTC"),
        ("last run", human_time(body["last_run_at"]) + " UTC"),
    ]
    return pairs(items) + _filters_note(body)


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


def _policy_name(name: str | None) -> str:
    return "(none)" if name is None else clean(name)


def render_policies(body: dict[str, Any]) -> str:
    """Policies as a table."""
    if not body["policies"]:
        return _empty(body)
    return table(
        ["policy", "runs", "ok", "failed", "before", "after", "saved", "saved %", "last run"],
        [
            [
                _policy_name(r["policy"]),
                r["runs"],
                r["succeeded"],
                _red(r["failed"]),
                human_bytes(r["size_before_bytes"]),
                human_bytes(r["size_after_bytes"]),
                human_bytes(r["saved_bytes"]),
                _percent(r["saved_percent"]),
                human_time(r["last_run_at"]),
            ]
            for r in body["policies"]
        ],
        right=(1, 2, 3, 4, 5, 6, 7),
    ) + _filters_note(body)


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


def render_policy(body: dict[str, Any]) -> str:
    """One policy's totals and its actions by type."""
    head = pairs(
        [
            ("policy", _policy_name(body["policy"])),
            ("runs", body["runs"]),
            ("succeeded", body["succeeded"]),
            ("failed", _red(body["failed"])),
            ("interrupted", body["interrupted"]),
            ("space saved", _saved_line(body)),
            ("size after", human_bytes(body["size_after_bytes"])),
            ("last run", human_time(body["last_run_at"]) + " UTC"),
        ]
    )
    if not body["actions"]:
        return head + "\n\nNo actions recorded for this policy." + _filters_note(body)
    actions = table(
        ["action", "count", "failed"],
        [[clean(a["type"] or "(none)"), a["count"], _red(a["failed"])] for a in body["actions"]],
        right=(1, 2),
    )
    return head + "\n\n" + actions + _filters_note(body)


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


def render_runs(runs: list[dict[str, Any]]) -> str:
    """Runs as a table, statuses coloured; the node column only when runs come from several."""
    several_nodes = len({r["node"] for r in runs}) > 1
    headers = ["started (UTC)", "status", "policy"]
    headers += ["node"] if several_nodes else []
    headers += ["before", "after", "saved", "took", "run", "path"]
    rows = []
    for r in runs:
        row = [human_time(r["started_at"]), status_text(r["status"]), clean(r["policy"])]
        row += [clean(r["node"])] if several_nodes else []
        row += [
            human_bytes(r["size_before_bytes"]),
            human_bytes(r["size_after_bytes"]),
            human_bytes(r["saved_bytes"]),
            human_duration(r["duration_seconds"]),
            r["id"][:8],
            clean(r["path"]),
        ]
        rows.append(row)
    first_number = 4 if several_nodes else 3
    return table(headers, rows, right=tuple(range(first_number, first_number + 4)))


def render_run_list(body: dict[str, Any]) -> str:
    """A `{"runs": [...]}` answer as a table, with the errors of failed runs below it."""
    if not body["runs"]:
        return "No runs match." + _filters_note(body)
    errors = [
        f"  {r['id'][:8]}  {last_line(r['error'])}"
        for r in body["runs"]
        if r["status"] == "failed" and r["error"]
    ]
    text = render_runs(body["runs"])
    if errors:
        text += "\n\n" + click.style("errors:", fg="red", bold=True) + "\n" + "\n".join(errors)
    return text + _filters_note(body)


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


def _tracks(counts: dict[str, Any]) -> str:
    return ", ".join(f"{'?' if n is None else n} {kind}" for kind, n in counts.items())


def _video(run: dict[str, Any]) -> str:
    source, target = run["video_source_codec"], run["video_target_codec"]
    if run["video_transcode_skipped"]:
        reason = run["video_skip_reason"]
        return f"{clean(source or '?')}, not transcoded" + (f" ({clean(reason)})" if reason else "")
    if target:
        return f"{clean(source or '?')} -> {clean(target)}"
    return f"{clean(source or '?')} (kept)" if source else "-"


def _optional(value: Any) -> Any:
    return "-" if value is None else value


def _actions_table(actions: list[dict[str, Any]]) -> str:
    return table(
        ["#", "action", "track", "ok", "took", "rule", "message"],
        [
            [
                i,
                clean(a["type"]),
                clean(a["track_type"] or "")
                + ("" if a["track_index"] is None else f" #{a['track_index']}")
                or "-",
                "yes" if a["success"] else click.style("no", fg="red", bold=True),
                "-" if a["duration_ms"] is None else f"{a['duration_ms']:.0f} ms",
                clean(a["rule"]),
                last_line(a["message"]),
            ]
            for i, a in enumerate(actions, 1)
        ],
        right=(0, 4),
    )


def _phases_table(phases: list[dict[str, Any]]) -> str:
    return table(
        ["phase", "wall time", "read", "written", "fps", "bitrate"],
        [
            [
                clean(p["name"]),
                human_duration(p["wall_time_seconds"]),
                human_bytes(p["bytes_read"]),
                human_bytes(p["bytes_written"]),
                "-" if p["encoding_fps"] is None else f"{p['encoding_fps']:.1f}",
                "-"
                if p["encoding_bitrate"] is None
                else f"{p['encoding_bitrate'] / 1000:.0f} kb/s",
            ]
            for p in phases
        ],
        right=(1, 2, 3, 4, 5),
    )


def render_detail(run: dict[str, Any]) -> str:
    """One run with its actions and phases."""
    items = [
        ("run", run["id"]),
        ("status", status_text(run["status"])),
        ("path", clean(run["path"])),
        ("output", clean(run["output_path"])),
        ("policy", clean(run["policy"])),
        ("node", clean(run["node"])),
        ("job", clean(run["job_id"])),
        ("source", clean(run["source"])),
        ("started", human_time(run["started_at"]) + " UTC"),
        ("finished", human_time(run["finished_at"]) + (" UTC" if run["finished_at"] else "")),
        ("took", human_duration(run["duration_seconds"])),
        (
            "size",
            f"{human_bytes(run['size_before_bytes'])} -> {human_bytes(run['size_after_bytes'])}",
        ),
        ("saved", human_bytes(run["saved_bytes"])),
        ("tracks before", _tracks(run["tracks_before"])),
        ("tracks after", _tracks(run["tracks_after"])),
        ("video", _video(run)),
        (
            "audio",
            f"{_optional(run['audio_tracks_transcoded'])} transcoded, "
            f"{_optional(run['audio_tracks_preserved'])} preserved",
        ),
        ("encoder", clean(run["encoder_type"])),
        (
            "phases",
            f"{'?' if run['phases_completed'] is None else run['phases_completed']} done"
            f" of {'?' if run['phases_total'] is None else run['phases_total']}",
        ),
        ("changes", _optional(run["total_changes"])),
    ]
    if run["error"]:
        lines = [clean(line) for line in run["error"].splitlines() or [""]]
        error = ("\n" + " " * (len("tracks before") + 2)).join(lines)
        items.append(("error", click.style(error, fg="red")))
    text = pairs(items)
    if run["actions"]:
        text += "\n\n" + click.style("actions", bold=True) + "\n" + _actions_table(run["actions"])
    if run["phases"]:
        text += "\n\n" + click.style("phases", bold=True) + "\n" + _phases_table(run["phases"])
    return text


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


def _bar(length: int) -> str:
    return click.style("#" * length, fg="green") if length > 0 else ""


def render_trend(body: dict[str, Any]) -> str:
    """Periods as a table with a bar of space saved."""
    if not body["points"]:
        return _empty(body)
    top = max((max(p["saved_bytes"], 0) for p in body["points"]), default=0) or 1
    return table(
        [body["by"], "runs", "ok", "failed", "before", "saved", ""],
        [
            [
                p["period"],
                p["runs"],
                p["succeeded"],
                _red(p["failed"]),
                human_bytes(p["size_before_bytes"]),
                human_bytes(p["saved_bytes"]),
                _bar(round(20 * p["saved_bytes"] / top)),
            ]
            for p in body["points"]
        ],
        right=(1, 2, 3, 4, 5),
    ) + _filters_note(body)


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


COMMANDS = (summary, policies, policy, recent, file_history, detail, trend)
