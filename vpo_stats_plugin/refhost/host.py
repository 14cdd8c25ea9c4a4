"""The pluggy side of the reference host: a plugin manager that finds plugins by entry point."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

import pluggy

import vpo_stats_plugin.hookspecs

PROJECT = "vpo"
TRACE_ENV = "VPO_TRACE_HOOKS"


def make_plugin_manager(
    *, entry_points: bool = True, plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A ``vpo`` plugin manager with the hookspecs, installed plugins and any ``plugins`` given."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(vpo_stats_plugin.hookspecs)
    if entry_points:
        pm.load_setuptools_entrypoints(PROJECT)
    for plugin in plugins:
        pm.register(plugin)
    if os.environ.get(TRACE_ENV):  # datasette-style tracing of every hook call, to stderr
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def list_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Each registered plugin: its name, distribution and version (when installed), its hooks."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    listing = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        callers = pm.get_hookcallers(plugin) or []
        listing.append(
            {
                "name": name,
                "module": getattr(plugin, "__name__", type(plugin).__name__),
                "distribution": dist.project_name if dist else None,
                "version": dist.version if dist else None,
                "hooks": sorted(caller.name for caller in callers),
            }
        )
    return sorted(listing, key=lambda entry: entry["name"])
