"""docs/cli.md is every command's --help as the commands print it today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_page_is_current() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == _generator().render(), (  # type: ignore[attr-defined]
        "docs/cli.md is stale: run python scripts/gen_cli_docs.py"
    )


def test_the_page_covers_every_command() -> None:
    from vpo_stats_plugin.cli import standalone_group

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name in standalone_group().commands:
        assert f"\n## vpo-stats {name}\n" in page, name
