"""How the reading commands' answers look as text for people: blocks and tables."""

from __future__ import annotations

from typing import Any

import click

from .output import (
    clean,
    human_bytes,
    human_duration,
    human_time,
    last_line,
    pairs,
    status_text,
    table,
)

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


def render_nodes(body: dict[str, Any]) -> str:
    """Nodes as a table."""
    if not body["nodes"]:
        return _empty(body)
    return table(
        ["node", "runs", "ok", "failed", "interrupted", "running", "saved", "saved %", "last run"],
        [
            [
                "(none)" if r["node"] is None else clean(r["node"]),
                r["runs"],
                r["succeeded"],
                _red(r["failed"]),
                r["interrupted"],
                r["running"],
                human_bytes(r["saved_bytes"]),
                _percent(r["saved_percent"]),
                human_time(r["last_run_at"]),
            ]
            for r in body["nodes"]
        ],
        right=(1, 2, 3, 4, 5, 6, 7),
    ) + _filters_note(body)


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
