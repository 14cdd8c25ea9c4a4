"""Formatting answers for people (tables) and for scripts (json, csv). No data access here."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

FORMATS = ("table", "json", "csv")
STATUS_COLOURS = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}


def human_bytes(value: int | float | None, signed: bool = False) -> str:
    """1536 -> '1.5 KiB'; None -> '-'."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    size = float(abs(value))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            text = f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
            return sign + text
        size /= 1024
    return sign + f"{size:.1f} PiB"  # pragma: no cover


def human_duration(seconds: float | None) -> str:
    """75.2 -> '1m 15s'; None -> '-'."""
    if seconds is None:
        return "-"
    if round(seconds, 1) < 60:  # 59.96 is "1m 00s", not "60.0s"
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def human_time(stamp: str | None) -> str:
    """'2026-11-25T16:22:06.873527Z' -> '2026-11-25 16:22:06'."""
    return "-" if not stamp else stamp[:19].replace("T", " ")


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 run', '2 runs', '1,000,000 runs'."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def clean(value: Any) -> str:
    """A stored string made safe for a terminal: control characters (escape sequences that
    could restyle or retitle the terminal, newlines that would break a row) shown escaped."""
    text = "-" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def last_line(text: str | None, limit: int = 160) -> str:
    """The last non-blank line of a (possibly multi-line) message, cleaned and shortened."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    line = clean(lines[-1].strip()) if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def status_text(status: str) -> str:
    """A status, coloured on a terminal (click.echo strips colour elsewhere)."""
    return click.style(status, fg=STATUS_COLOURS.get(status))


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: styles take none, wide (CJK) characters two."""
    plain = click.unstyle(text)
    if plain.isascii():
        return len(plain)
    import unicodedata

    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in plain
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """Aligned columns; ``right`` lists the columns aligned right (numbers)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, _width(c)) for w, c in zip(widths, row)]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, (value, width) in enumerate(zip(values, widths)):
            pad = " " * (width - _width(value))
            parts.append(pad + value if i in right else value + pad)
        return "  ".join(parts).rstrip()

    out = [line([click.style(h, bold=True) if h else h for h in headers])]
    out.append(line(["-" * w for w in widths]))
    out += [line(row) for row in cells]
    return "\n".join(out)


def pairs(items: Sequence[tuple[str, Any]]) -> str:
    """A two-column key: value block."""
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{click.style(k.ljust(width), bold=True)}  {v}" for k, v in items)


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts joined with '_' (CONTRACT section 4); lists become JSON text."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}_"))
        elif isinstance(value, list):
            out[name] = json.dumps(value, sort_keys=True, ensure_ascii=False)
        else:
            out[name] = value
    return out


def to_json(body: Any) -> str:
    """The API's body, as the CLI prints it."""
    return json.dumps(body, indent=2, ensure_ascii=False)


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str] = ()) -> str:
    """Rows flattened into CSV with a header line (``columns`` first, so an empty list still
    has its header)."""
    flat = [flatten(r) for r in rows]
    fields: list[str] = list(columns)
    for row in flat:
        fields += [k for k in row if k not in fields]
    if not fields:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue().rstrip("\n")


def write_raw(text: str) -> None:
    """Write machine output exactly as it is (click.echo would strip escape characters that
    are part of the data when standard output is not a terminal)."""
    stream = sys.stdout
    stream.write(text)
    stream.flush()


def colour() -> bool | None:
    """False when NO_COLOR is set (no-color.org); else None: colour only on a terminal."""
    return False if os.environ.get("NO_COLOR") else None


def emit(
    body: Any, fmt: str, render_table: Any, csv_rows: Any = None, columns: Sequence[str] = ()
) -> None:
    """Print ``body`` as json, csv (rows from ``csv_rows(body)``) or a table.

    json and csv are printed without any styling; the table is styled, and click strips the
    styles when standard output is not a terminal.
    """
    try:
        if fmt == "json":
            write_raw(to_json(body) + "\n")
        elif fmt == "csv":
            text = to_csv(csv_rows(body) if csv_rows else [body], columns)
            if text:
                write_raw(text + "\n")
        else:
            click.echo(render_table(body), color=colour())
    except BrokenPipeError:  # `vpo-stats recent | head`: the reader has what it wanted
        silence_stdout()


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the flush at exit cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
