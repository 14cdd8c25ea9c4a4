"""Serve the stats sub-application at /stats on 127.0.0.1 for the benchmark's HTTP rows.

Run as ``python benchmarks/server.py DB PORT``: the real ``vpo_stats_plugin.web.create_app``
with the settings the plugin reads (``VPO_STATS_DATABASE`` is set to DB).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    db, port = sys.argv[1], int(sys.argv[2])
    os.environ["VPO_STATS_DATABASE"] = db
    from aiohttp import web

    from vpo_stats_plugin.web import create_app

    root = web.Application()
    root.add_subapp("/stats", create_app())
    web.run_app(root, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
