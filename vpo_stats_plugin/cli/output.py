"""Formatting answers for people (tables) and for scripts (json, csv). No data access here."""

from __future__ import annotations

import csv
import io
import json
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
    if seconds < 60:
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


def status_text(status: str) -> str:
    """A status, coloured on a terminal (click.echo strips colour elsewhere)."""
    return click.style(status, fg=STATUS_COLOURS.get(status))


def _width(text: str) -> int:
    return len(click.unstyle(text))


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

    out = [line([click.style(h, bold=True) for h in headers]), line(["-" * w for w in widths])]
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
            out[name] = json.dumps(value, sort_keys=True)
        else:
            out[name] = value
    return out


def to_json(body: Any) -> str:
    """The API's body, as the CLI prints it."""
    return json.dumps(body, indent=2, ensure_ascii=False)


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """Rows flattened into CSV with a header line."""
    flat = [flatten(r) for r in rows]
    if not flat:
        return ""
    buffer = io.StringIO()
    fields: list[str] = []
    for row in flat:
        fields += [k for k in row if k not in fields]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue().rstrip("\n")


def emit(body: Any, fmt: str, render_table: Any, csv_rows: Any = None) -> None:
    """Print ``body`` as json, csv (rows from ``csv_rows(body)``) or a table."""
    if fmt == "json":
        click.echo(to_json(body))
    elif fmt == "csv":
        text = to_csv(csv_rows(body) if csv_rows else [body])
        if text:
            click.echo(text)
    else:
        click.echo(render_table(body))
