"""Per-file recording cost through the real plugin: before-file, 5 actions, after-file.

Run as ``python benchmarks/record.py DB FILES MEDIA``: loads the plugin through its ``vpo``
entry point in a pluggy PluginManager (as a host does), records FILES files of MEDIA (a real
file, hashed with ``hash = partial``; a directory: its files in turn) with node
``bench-recorder``, and prints one JSON line of per-file milliseconds, the slowest single
hook call after the first file, and the slowest of the first file's (which set the recorder
up). Track counts come from the host, so ffprobe is not involved. ``BENCH_NODE`` names
another node, ``BENCH_WARM`` sets how many first files are not counted (default 3).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def main() -> None:
    db, files, media = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.environ.update(
        VPO_STATS_DATABASE=db,
        VPO_STATS_HASH=os.environ.get("BENCH_HASH", "partial"),
        VPO_STATS_PROBE_TRACKS="false",
        VPO_STATS_NODE=os.environ.get("BENCH_NODE", "bench-recorder"),
    )
    warm = int(os.environ.get("BENCH_WARM", "3"))
    if os.path.isdir(media):
        library = sorted(os.path.join(media, name) for name in os.listdir(media))
    else:
        library = [media]
    import pluggy

    import vpo_stats_plugin.hookspecs

    pm = pluggy.PluginManager("vpo")
    pm.add_hookspecs(vpo_stats_plugin.hookspecs)
    pm.load_setuptools_entrypoints("vpo")
    hook = pm.hook
    tracks = [{"type": "video", "codec": "h264", "language": None}] + [
        {"type": t, "codec": c, "language": lang}
        for t, c, lang in (
            ("audio", "aac", "eng"),
            ("audio", "ac3", "fra"),
            ("audio", "ac3", "deu"),
            ("subtitle", "subrip", "eng"),
            ("subtitle", "subrip", "fra"),
            ("subtitle", "subrip", "deu"),
        )
    ]
    times: list[float] = []
    slowest_hook, slowest_at, first_file = 0.0, "", 0.0

    def timed(call: Any, **payload: Any) -> None:
        nonlocal slowest_hook, slowest_at, first_file
        t0 = time.perf_counter()
        call(**payload)
        took = (time.perf_counter() - t0) * 1000
        if i == 0:  # the process's first hook also sets the recorder up (imports, a session)
            first_file = max(first_file, took)
        elif took > slowest_hook:
            slowest_hook, slowest_at = took, f"{call.name} of file {i + 1}"

    for i in range(files + warm):  # the first ones warm the connection up; not counted
        job = {
            "id": f"bench-{os.getpid()}-{i}",
            "path": library[i % len(library)],
            "policy": "english-only",
            "phases_total": 2,
            "tracks": tracks,
        }
        start = time.perf_counter()
        timed(hook.vpo_before_file, job=job)
        for n in range(5):
            timed(
                hook.vpo_after_action,
                job=job,
                action={
                    "type": "remove_track",
                    "track_type": "audio" if n < 2 else "subtitle",
                    "track_index": n + 1,
                    "before": {"language": "fra"},
                    "after": None,
                    "success": True,
                    "duration_ms": 3.0,
                    "rule": "english only",
                    "phase": "tracks",
                },
            )
        timed(
            hook.vpo_after_file,
            job=job,
            result={
                "success": True,
                "tracks": tracks[:2] + tracks[4:5],
                "phases_completed": 2,
                "phases": [
                    {
                        "name": "tracks",
                        "wall_time_seconds": 0.1,
                        "bytes_read": 1,
                        "bytes_written": 1,
                    }
                ],
            },
        )
        if i >= warm:
            times.append((time.perf_counter() - start) * 1000)
    from vpo_stats_plugin import hooks

    recorder = hooks.get_recorder()
    print(
        json.dumps(
            {
                "ms": times,
                "slowest_hook_ms": slowest_hook,
                "slowest_hook": slowest_at,
                "first_file_hook_ms": first_file,
                "errors": recorder.errors.total if recorder else None,
                "pending": recorder.pending if recorder else None,
            }
        )
    )


if __name__ == "__main__":
    main()
