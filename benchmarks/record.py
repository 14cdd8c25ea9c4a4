"""Per-file recording cost through the real plugin: before-file, 5 actions, after-file.

Run as ``python benchmarks/record.py DB FILES MEDIA``: loads the plugin through its ``vpo``
entry point in a pluggy PluginManager (as a host does), records FILES files of MEDIA (a real
file, hashed with ``hash = partial``) with node ``bench-recorder``, and prints one JSON line
of per-file milliseconds. Track counts come from the host, so ffprobe is not involved.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    db, files, media = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.environ.update(
        VPO_STATS_DATABASE=db,
        VPO_STATS_HASH=os.environ.get("BENCH_HASH", "partial"),
        VPO_STATS_PROBE_TRACKS="false",
        VPO_STATS_NODE="bench-recorder",
    )
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
    times = []
    for i in range(files + 3):  # the first three warm the connection up; not counted
        job = {
            "id": f"bench-{os.getpid()}-{i}",
            "path": media,
            "policy": "english-only",
            "phases_total": 2,
            "tracks": tracks,
        }
        start = time.perf_counter()
        hook.vpo_before_file(job=job)
        for n in range(5):
            hook.vpo_after_action(
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
        hook.vpo_after_file(
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
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    from vpo_stats_plugin import hooks

    recorder = hooks.get_recorder()
    print(
        json.dumps(
            {
                "ms": times,
                "errors": recorder.errors.total if recorder else None,
                "pending": recorder.pending if recorder else None,
            }
        )
    )


if __name__ == "__main__":
    main()
