"""A real pluggy host in its own process, for the fault tests.

Run as ``python tests/hostproc.py SPEC_JSON``: the host loads the plugin through its installed
``vpo`` entry point, as VPO would, and either processes real media with the reference host's
ffmpeg processor (``"mode": "refhost"``) or calls the three hooks on real files itself
(``"mode": "scripted"``, the default: before-file, N actions, after-file). It prints one JSON
line per event on stdout: ``hook`` (name, milliseconds, whether the call raised), ``file``,
``hanging`` (it stopped mid-file and sleeps until killed) and ``done`` (what the plugin counted).
After ``done`` the process exits normally, so the plugin's exit flush runs.

Tests import ``host_env``, ``run_host`` and ``start_host`` from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

SCRIPT = Path(__file__).resolve()


# --- the test side ----------------------------------------------------------------------------


def host_env(db: Path | str, **settings: Any) -> dict[str, str]:
    """This process's environment with the plugin pointed at ``db`` and ``settings`` as env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPO_STATS_")}
    env["VPO_STATS_DATABASE"] = str(db)
    env.setdefault("VPO_STATS_PROBE_TRACKS", "false")
    for key, value in settings.items():
        env[f"VPO_STATS_{key.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


@dataclass
class HostRun:
    """What a finished host process printed and how it ended."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    seconds: float
    done: dict[str, Any] = field(default_factory=dict)

    def of(self, event: str) -> list[dict[str, Any]]:
        """The events of one kind."""
        return [e for e in self.events if e["event"] == event]

    @property
    def hook_ms(self) -> list[float]:
        """How long each hook call took, in milliseconds."""
        return [e["ms"] for e in self.of("hook")]

    @property
    def raised(self) -> list[dict[str, Any]]:
        """Hook calls that raised into the host."""
        return [e for e in self.of("hook") if e["raised"]]


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_host(spec: dict[str, Any], env: dict[str, str], timeout: float = 60) -> HostRun:
    """Run a host to its end; answers what it printed."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = _events(done.stdout)
    run = HostRun(done.returncode, events, done.stderr, time.monotonic() - started)
    run.done = next((e for e in events if e["event"] == "done"), {})
    return run


def record_files(directory: Path, db: Path, policy: str, count: int) -> None:
    """A host records ``count`` new small files of ``policy`` into ``db``, each one action."""
    files = []
    for n in range(count):
        media = directory / f"late-{n}.mkv"
        media.write_bytes(b"recorded after the preview %d" % n)
        files.append(str(media))
    host = run_host({"files": files, "policy": policy, "actions": 1}, host_env(db))
    assert host.returncode == 0 and len(host.of("file")) == count, host.stderr


def start_host(spec: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start a host in the background (stdout piped, one JSON event per line)."""
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), json.dumps(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], event: str, timeout: float = 20) -> dict[str, Any]:
    """Read ``proc``'s events until one of kind ``event``; answers it."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"host ended before {event!r}: {proc.stderr.read()}")  # type: ignore[union-attr]
        if line.startswith("{") and json.loads(line)["event"] == event:
            return json.loads(line)
    raise AssertionError(f"no {event!r} from the host within {timeout} s")


_LOCKER = """
import sqlite3, sys, time
db, seconds, exclusive = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "exclusive"
conn = sqlite3.connect(db, isolation_level=None)
if exclusive:  # readers are kept out too
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
else:  # a writer: readers go on, other writers wait
    conn.execute("BEGIN IMMEDIATE")
conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the lock now
print("locked", flush=True)
time.sleep(seconds)
conn.execute("COMMIT")
conn.close()
print("released", flush=True)
"""


def hold_lock(db: Path, seconds: float, *, exclusive: bool = False) -> subprocess.Popen[str]:
    """Another process that holds a write lock on ``db`` for ``seconds``; answers once it does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(db), str(seconds), "exclusive" * exclusive],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run ``vpo-stats ARGS`` in its own process; answers the CompletedProcess."""
    code = "import sys; from vpo_stats_plugin.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        errors="surrogateescape",  # a path that is not UTF-8 comes back as it went
        timeout=timeout,
    )


# --- the host side ----------------------------------------------------------------------------

_print_lock = threading.Lock()


def _emit(**event: Any) -> None:
    line = (json.dumps(event, default=str) + "\n").encode()
    with _print_lock:  # one write(2) a line: lines from worker processes never interleave
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), line)


class Timing:
    """A plugin wrapping every ``vpo`` hook call: how long the plugins took, and if one raised."""

    hookimpl = pluggy.HookimplMarker("vpo")

    def _timed(self, name: str) -> Any:
        started = time.perf_counter()
        raised = None
        try:
            return (yield)
        except BaseException as err:
            raised = repr(err)
            raise
        finally:
            ms = round((time.perf_counter() - started) * 1000, 2)
            _emit(event="hook", hook=name, ms=ms, raised=raised)

    @hookimpl(wrapper=True)
    def vpo_before_file(self, job: Any) -> Any:
        return (yield from self._timed("vpo_before_file"))

    @hookimpl(wrapper=True)
    def vpo_after_action(self, job: Any, action: Any) -> Any:
        return (yield from self._timed("vpo_after_action"))

    @hookimpl(wrapper=True)
    def vpo_after_file(self, job: Any, result: Any) -> Any:
        return (yield from self._timed("vpo_after_file"))


def _hang(job_id: str) -> None:
    _emit(event="hanging", job=job_id, pid=os.getpid())
    while True:
        time.sleep(60)


def _scripted(pm: Any, spec: dict[str, Any], number: int, path: str) -> None:
    job = {
        "id": f"{spec.get('prefix', 'job')}-{os.getpid()}-{number}",
        "path": path,
        "policy": spec.get("policy", "faults"),
    }
    hook = pm.hook
    _call(hook.vpo_before_file, job=job)
    for seq in range(spec.get("actions", 3)):
        action = {"type": "remove_track", "track_type": "audio", "track_index": seq}
        _call(hook.vpo_after_action, job=job, action={**action, "success": True})
        if spec.get("hang") == number:
            _hang(job["id"])
    if spec.get("hang") == number:
        _hang(job["id"])
    _call(hook.vpo_after_file, job=job, result={"success": True, "output_path": path})
    _emit(event="file", job=job["id"], path=path, success=True)


def _call(caller: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):  # noted by Timing; a host carries on with its file
        caller(**kwargs)


def _refhost(pm: Any, spec: dict[str, Any], number: int, path: str) -> None:
    from vpo_stats_plugin.refhost.policy import Policy
    from vpo_stats_plugin.refhost.processor import process_file

    policy = Policy(name=spec.get("policy", "faults"), keep_audio=("eng",))
    Path(spec["out_dir"]).mkdir(parents=True, exist_ok=True)  # as the host's CLI makes it
    outcome = process_file(pm, path, policy, output_dir=spec["out_dir"])
    _emit(
        event="file",
        job=outcome.job.id,
        path=path,
        success=outcome.result.success,
        error=outcome.result.error,
        size_after=outcome.size_after,
        hook_errors=outcome.hook_errors,
    )


def _limit_file_size(limit: int, seconds: float | None) -> None:
    """Writes past ``limit`` bytes fail (EFBIG), as on a full disk; for ``seconds`` if given."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel ends the process
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    if seconds is not None:

        def lift() -> None:
            time.sleep(seconds)
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            _emit(event="disk-freed")

        threading.Thread(target=lift, daemon=True).start()


_pool_pm: Any = None


def _pool_work(job: tuple[dict[str, Any], int, str]) -> int:
    """A multiprocessing worker's share: one file with its own plugin manager."""
    global _pool_pm
    from vpo_stats_plugin import hooks
    from vpo_stats_plugin.refhost.host import make_plugin_manager

    if _pool_pm is None:
        _pool_pm = make_plugin_manager(plugins=[Timing()])
    spec, number, path = job
    _scripted(_pool_pm, spec, number, path)
    return os.getpid() if hooks._recorder is not None else 0


def main(spec: dict[str, Any]) -> int:
    import vpo_stats_plugin.writequeue
    from vpo_stats_plugin.refhost.host import make_plugin_manager

    if "exit_patience" in spec:  # how long the exit flush waits for a lock (default 60 s)
        vpo_stats_plugin.writequeue.EXIT_PATIENCE_S = float(spec["exit_patience"])
    if "open_patience" in spec:  # how long a lock met opening the database is normal work
        vpo_stats_plugin.writequeue.OPEN_PATIENCE_S = float(spec["open_patience"])
    if "file_size_limit" in spec:  # a disk that takes no more than this many bytes per file
        _limit_file_size(int(spec["file_size_limit"]), spec.get("file_size_limit_for"))

    pm = make_plugin_manager(plugins=[Timing()])
    if "stats" not in {name for name, _ in pm.list_name_plugin()}:
        _emit(event="error", message="the plugin was not loaded through its entry point")
        return 2
    files, first = spec["files"], 0
    work = _refhost if spec.get("mode") == "refhost" else _scripted
    threads = max(1, int(spec.get("threads", 1)))

    def worker(offset: int) -> None:
        for number in range(offset, len(files), threads):
            work(pm, spec, number + first, files[number])

    if spec.get("fork"):  # the first file here, then the rest in a forked child
        work(pm, spec, 0, files[0])
        child = os.fork()
        if child:
            _emit(event="forked", child=child)
            os.waitpid(child, 0)
            files = []
        else:
            files, first = files[1:], 1

    if spec.get("pool"):  # a multiprocessing pool ("fork" or "spawn") does the files
        import multiprocessing

        context = multiprocessing.get_context(spec["pool"])
        pool = context.Pool(2)
        workers = pool.map(_pool_work, [(spec, n, path) for n, path in enumerate(files)])
        pool.close()
        pool.join()  # the workers' exit flushes run before this returns
        _emit(event="pool-done", workers=sorted(set(workers)))
        files = []

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    if spec.get("linger"):  # stay alive a while after the work, as a long-running host does
        _emit(event="lingering")
        time.sleep(float(spec["linger"]))

    from vpo_stats_plugin import hooks

    recorder = hooks._recorder
    _emit(
        event="done",
        recording=recorder is not None,
        failures=dict(hooks.failures),
        errors=dict(recorder.errors.counts) if recorder else {},
        pending=recorder.pending if recorder else 0,
        pid=os.getpid(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
