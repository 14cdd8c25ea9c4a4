"""The docs keep up with the code: hook signatures and the generated schema page."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

import vpo_stats_plugin.hookspecs

ROOT = Path(__file__).resolve().parent.parent


def _hookspecs() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(vpo_stats_plugin.hookspecs, inspect.isfunction)
        if name.startswith("vpo_")
    ]


@pytest.mark.parametrize("name", _hookspecs())
def test_every_hook_is_documented_with_its_signature(name: str) -> None:
    fn = getattr(vpo_stats_plugin.hookspecs, name)
    params = ", ".join(inspect.signature(fn).parameters)
    assert f"## {name}({params})" in (ROOT / "docs" / "hooks.md").read_text()


def test_the_schema_page_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_schema_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "schema.md").read_text() == module.render(), (
        "docs/schema.md is stale: run python scripts/gen_schema_docs.py"
    )
