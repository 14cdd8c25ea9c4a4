"""The reference host's command line: the ``vpo`` root group with every ``vpo.cli`` plugin mounted."""

from __future__ import annotations

import json
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vpo_stats_plugin.refhost.policy import VIDEO_ENCODERS

if TYPE_CHECKING:
    from vpo_stats_plugin.refhost.policy import Policy
    from vpo_stats_plugin.refhost.processor import Outcome

GROUP = "vpo.cli"


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _policy_from_options(options: dict[str, Any]) -> Policy:
    from vpo_stats_plugin.refhost.policy import Policy, load_policy, merge, parse_languages

    policy = load_policy(options["policy_file"]) if options["policy_file"] else Policy()
    overrides: dict[str, object] = {}
    if options["policy"]:
        overrides["name"] = options["policy"]
    for option, key in (("keep_audio", "keep_audio"), ("keep_subs", "keep_subtitles")):
        if options[option] is not None:
            overrides[key] = parse_languages(options[option])
    if options["keep_untagged"] is not None:
        overrides["keep_untagged"] = options["keep_untagged"]
    if options["video_codec"] is not None:
        overrides["video_codec"] = (
            None if options["video_codec"] == "copy" else options["video_codec"]
        )
    return merge(policy, overrides)


def _outcome_line(outcome: Outcome) -> str:
    result, actions = outcome.result, outcome.actions
    seconds = f"{outcome.wall_time_seconds:.2f} s"
    if not result.success:
        first = (result.error or "unknown error").strip().splitlines()[0]
        return f"FAILED: {first} ({seconds})"
    removed = sum(1 for a in actions if a.type == "remove_track")
    parts = [f"{removed} track{'s' * (removed != 1)} removed"]
    if result.video_transcode_skipped is False:
        parts.append(f"video {result.video_source_codec} -> {result.video_target_codec}")
    before, after = outcome.size_before, outcome.size_after
    sizes = f"{_human(before)} -> {_human(after)}"
    if before and after is not None:
        sizes += f" ({(after - before) / before:+.1%})"
    return f"ok: {', '.join(parts)}, {sizes} ({seconds})"


@click.command("process")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--policy-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML policy file (keys: name, keep_audio, keep_subtitles, keep_untagged, video_codec).",
)
@click.option("--policy", help="Policy name recorded with each run (overrides the file's).")
@click.option(
    "--keep-audio", metavar="LANGS", help="Audio languages to keep: eng,fra | all | none."
)
@click.option("--keep-subs", metavar="LANGS", help="Subtitle languages to keep: eng | all | none.")
@click.option(
    "--keep-untagged/--drop-untagged",
    default=None,
    help="Keep tracks with no language tag (default: keep).",
)
@click.option(
    "--video-codec",
    type=click.Choice([*VIDEO_ENCODERS, "copy"]),
    help="Transcode video to this codec (skipped when already so); copy: never.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write FILE.mkv here; without it each file is replaced in place.",
)
def process(files: tuple[Path, ...], output_dir: Path | None, **options: object) -> None:
    """Apply a track policy to FILES, calling the plugins' hooks for each.

    Every file is rewritten to Matroska (.mkv). A file that fails is left as it was, reported,
    and the next one is processed; the exit status is 1 when any file failed.

    \b
    Examples:
      python -m vpo_stats_plugin.refhost process --policy english --keep-audio eng \\
          --keep-subs eng --output-dir out/ movies/*.mkv
      python -m vpo_stats_plugin.refhost process --policy-file english.toml movie.mp4
    """
    from vpo_stats_plugin.refhost.host import make_plugin_manager
    from vpo_stats_plugin.refhost.media import ProcessingError, Tools
    from vpo_stats_plugin.refhost.policy import PolicyError
    from vpo_stats_plugin.refhost.processor import process_file

    try:
        policy = _policy_from_options(options)
        tools = Tools.find()
    except (PolicyError, ProcessingError) as exc:
        raise click.ClickException(str(exc)) from None
    if output_dir:
        output_dir.mkdir(parents=True, exist_ok=True)
    pm = make_plugin_manager()
    started, failed, before_total, after_total = time.monotonic(), 0, 0, 0
    for number, path in enumerate(files, 1):
        click.echo(f"[{number}/{len(files)}] {path} ... ", nl=False)
        if not path.is_file():
            failed += 1
            click.echo("FAILED: no such file; check the path")
            continue
        outcome = process_file(pm, path, policy, output_dir=output_dir, tools=tools)
        click.echo(_outcome_line(outcome))
        for error in outcome.hook_errors:
            click.echo(f"  warning: a plugin failed in {error}", err=True)
        failed += not outcome.result.success
        before_total += outcome.size_before or 0
        after_total += outcome.size_after or 0
    done = len(files) - failed
    click.echo(
        f"{len(files)} file{'s' * (len(files) != 1)} with policy {policy.name!r}: "
        f"{done} succeeded, {failed} failed; {_human(before_total)} -> {_human(after_total)}, "
        f"saved {_human(before_total - after_total)} in {time.monotonic() - started:.1f} s"
    )
    if failed:
        raise SystemExit(1)


@click.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def plugins(fmt: str) -> None:
    """List the loaded plugins, their distribution and version, and the hooks they implement.

    \b
    Examples:
      python -m vpo_stats_plugin.refhost plugins
      python -m vpo_stats_plugin.refhost plugins --format json
    """
    from vpo_stats_plugin.refhost.host import list_plugins, make_plugin_manager

    listing = list_plugins(make_plugin_manager())
    if fmt == "json":
        click.echo(json.dumps(listing, indent=2))
        return
    if not listing:
        click.echo("No plugins are installed for vpo.")
    for entry in listing:
        dist = f"{entry['distribution']} {entry['version']}" if entry["distribution"] else "-"
        click.echo(f"{entry['name']}  ({dist})  hooks: {', '.join(entry['hooks']) or '-'}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8320, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the host's web UI with every plugin's web app mounted (the stats one at /stats/).

    \b
    Example:
      python -m vpo_stats_plugin.refhost serve --port 8320
    """
    from aiohttp import web

    from vpo_stats_plugin.refhost.web import make_host_app

    click.echo(f"VPO reference host on http://{host}:{port}/ (Ctrl-C to stop)")
    web.run_app(make_host_app(), host=host, port=port, print=None)


def make_root() -> click.Group:
    """The ``vpo`` group: the host's own commands plus every ``vpo.cli`` entry point."""
    root = click.Group(
        "vpo",
        help="VPO reference host: applies track policies with ffmpeg and calls the vpo plugins.",
        commands=[process, plugins, serve],
    )
    for ep in entry_points(group=GROUP):
        try:
            command = ep.load()
            if not isinstance(command, click.Command):
                raise TypeError(f"{ep.value} is a {type(command).__name__}, not a click command")
        except Exception as exc:  # a broken plugin loses its command, the host still runs
            click.echo(f"vpo: skipped command {ep.name!r} from {ep.value}: {exc}", err=True)
            continue
        if command.name in root.commands:
            click.echo(f"vpo: skipped command {command.name!r} from {ep.value}: taken", err=True)
            continue
        root.add_command(command)
    return root


def main() -> None:
    """Run the ``vpo`` root group (``python -m vpo_stats_plugin.refhost``)."""
    make_root()(prog_name="vpo")
