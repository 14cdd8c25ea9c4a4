"""`vpo-stats demo`: sample media processed through the reference host, then what was recorded."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

DEFAULT_PORT = 8321
# (policy name, host options): two policies so the per-policy views have something to compare.
DEMO_POLICIES = (
    ("english-remux", ["--keep-audio", "eng", "--keep-subs", "eng"]),
    ("english-h264", ["--keep-audio", "eng", "--keep-subs", "eng", "--video-codec", "h264"]),
)


def _default_dir() -> Path:
    return Path.home() / ".vpo" / "demo"


def _stats_command(*args: str) -> None:
    """Run a `vpo-stats` command in this process (its output goes where ours goes)."""
    from vpo_stats_plugin.cli import standalone_group

    try:
        standalone_group().main(args=list(args), prog_name="vpo-stats", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None


def _run_host(policy: str, options: list[str], files: list[Path], out: Path, db: Path) -> int:
    """Process ``files`` with the reference host in a subprocess; answers its exit status."""
    cmd = [sys.executable, "-m", "vpo_stats_plugin.refhost", "process", "--policy", policy]
    cmd += [*options, "--output-dir", str(out), *map(str, files)]
    env = {**os.environ, "VPO_STATS_DATABASE": str(db), "PYTHONUNBUFFERED": "1"}
    shown = ["python", "-m", "vpo_stats_plugin.refhost", *cmd[3 : -len(files)], "..."]
    click.echo(f"$ VPO_STATS_DATABASE={shlex.quote(str(db))} {shlex.join(shown)}")
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            click.echo(f"  {line.rstrip()}")
    return proc.returncode


def _reset(directory: Path, db: Path) -> None:
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    for sub in ("media", "output"):
        shutil.rmtree(directory / sub, ignore_errors=True)


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the media, outputs and the demo's own stats.db go. [default: ~/.vpo/demo]",
)
@click.option(
    "--files", type=click.IntRange(1, 200), default=6, show_default=True, help="Files to make."
)
@click.option("--serve/--no-serve", default=False, help="Start the dashboard afterwards.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Dashboard port with --serve.",
)
@click.option("--reset", is_flag=True, help="Delete the demo's earlier database and files first.")
def demo(directory: Path | None, files: int, serve: bool, port: int, reset: bool) -> None:
    """Make sample media with ffmpeg, process it through the reference host, show the stats.

    The demo keeps to its own directory and database (DIR/stats.db); your real statistics
    are not touched. Each run adds to that database; --reset starts afresh.

    \b
    Examples:
      vpo-stats demo
      vpo-stats demo --dir /tmp/vpo-demo --files 12 --serve
    """
    from vpo_stats_plugin.refhost.media import ProcessingError
    from vpo_stats_plugin.samples import make_sample_media

    started = time.monotonic()
    directory = (directory or _default_dir()).expanduser().absolute()
    db = directory / "stats.db"
    if reset:
        _reset(directory, db)
    click.echo(f"Demo directory: {directory} (change it with --dir)")
    earlier = db.exists()
    click.echo(
        f"Making {files} sample file{'s' * (files != 1)} with ffmpeg in {directory / 'media'}"
    )
    try:
        media = make_sample_media(
            directory / "media",
            files,
            on_file=lambda p: click.echo(f"  made {p.name} ({p.stat().st_size:,} bytes)"),
        )
    except ProcessingError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the sample media in {directory}: {exc.strerror or exc}; "
            "choose another directory with --dir"
        ) from None

    click.echo(f"\nProcessing them through the reference host into {directory / 'output'}")
    failed = 0
    for number, (policy, options) in enumerate(DEMO_POLICIES):
        share = media[number :: len(DEMO_POLICIES)]
        if share:
            failed += _run_host(policy, options, share, directory / "output", db) != 0

    click.echo(f"\nWhat the plugin recorded (vpo-stats --db {shlex.quote(str(db))} summary):")
    if earlier:
        click.echo("(this includes the runs of earlier demos; --reset starts afresh)")
    _stats_command("--db", str(db), "summary")
    quoted = shlex.quote(str(db))
    click.echo(
        f"\nDone in {time.monotonic() - started:.1f} s. See more:\n"
        f"  vpo-stats --db {quoted} recent            newest runs, with their ids\n"
        f"  vpo-stats --db {quoted} detail RUN_ID     one run: actions and phases\n"
        f"  vpo-stats --db {quoted} policies          per-policy totals\n"
        f"  vpo-stats --db {quoted} nodes             per-node totals (one per machine)\n"
        f"  vpo-stats --db {quoted} serve             dashboard: "
        f"http://127.0.0.1:{DEFAULT_PORT}/stats/\n"
        f"  VPO_STATS_DATABASE={quoted} python -m vpo_stats_plugin.refhost stats summary"
        "   the same, inside the host"
    )
    if failed:
        raise click.ClickException("the reference host reported failures; see the lines above")
    if serve:
        click.echo("")
        _stats_command("--db", str(db), "serve", "--port", str(port))
