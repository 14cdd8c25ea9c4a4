"""A small reference host for the ``vpo`` hooks: applies track policies with ffmpeg.

It shows how a host wires the contract (plugin manager, CLI mount, web mount) and is what the
tests and ``vpo-stats demo`` run. Run it as ``python -m vpo_stats_plugin.refhost``.
"""
