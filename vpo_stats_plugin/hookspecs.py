"""The host contract: the per-file lifecycle hooks a host of pluggy project "vpo" calls."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("vpo")


@hookspec
def vpo_before_file(job: Any) -> None:
    """Called once per file before its first change; ``job`` has ``id`` and ``path``."""


@hookspec
def vpo_after_action(job: Any, action: Any) -> None:
    """Called after each action on the file, whether it succeeded (``action.success``) or not."""


@hookspec
def vpo_after_file(job: Any, result: Any) -> None:
    """Called once when the file is done: on success, on failure and on an exception."""
