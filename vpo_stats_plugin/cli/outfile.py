"""Where a command's output file goes: a regular file is written beside itself under a unique
temporary name and replaces the old one only once complete (a symlink's target is the file
replaced, the link stays); a FIFO or a character device is written straight through, or refused.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ..errors import StatsError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class Destination:
    """``named`` as the user gave it; ``target`` the file written in the end (links followed);
    ``writing`` where the bytes go now: a temporary file beside ``target``, or ``target``
    itself when it is a FIFO or a device."""

    named: Path
    target: Path
    writing: Path

    @property
    def streamed(self) -> bool:
        return self.writing == self.target


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _temporary(target: Path) -> Path:
    """A new empty file beside ``target`` that nothing else has (never an existing one)."""
    # a name near the file system's limit (255 bytes) leaves no room for the suffix
    base = target.name if len(os.fsencode(target.name)) <= 200 else "output"
    for _ in range(100):
        temp = target.with_name(f"{base}.{secrets.token_hex(4)}.partial")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temp
    raise FileExistsError(f"no free temporary name beside {target}")


def destination(path: Path, *, stream: bool, what: str = "a file") -> Destination:
    """Where the output for ``path`` goes (creating the temporary file, if one is needed).

    ``stream``: a FIFO or character device at ``path`` is written through; otherwise it is
    refused, since ``what`` must be a regular file. Raises StatsError naming ``path`` when it
    cannot be written there.
    """
    named = path.expanduser()
    target = Path(os.path.realpath(named))  # every link followed; a dangling one: its target
    shown = named if target == Path(os.path.abspath(named)) else f"{named} (-> {target})"
    try:
        try:
            info: os.stat_result | None = target.stat()  # a loop of links: ELOOP, said below
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            if stream and (stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode)):
                return Destination(named, target, target)
            raise StatsError(
                f"cannot write {shown}: it is {_kind(info.st_mode)}, and {what} must be a "
                "regular file: give the path of a file"
            )
        if not target.parent.is_dir():
            raise StatsError(f"cannot write {shown}: the directory {target.parent} does not exist")
        return Destination(named, target, _temporary(target))
    except OSError as err:
        raise StatsError(f"cannot write {shown}: {err.strerror or err}") from None


@contextmanager
def written(path: Path, *, stream: bool, what: str = "a file") -> Iterator[Destination]:
    """``destination(path)``; on a clean exit its temporary file replaces the target (taking
    its permissions), on an error it is removed."""
    dest = destination(path, stream=stream, what=what)
    if dest.streamed:
        yield dest
        return
    try:
        yield dest
        with suppress(FileNotFoundError):  # what replaces a file keeps its permissions
            os.chmod(dest.writing, stat.S_IMODE(dest.target.stat().st_mode))
        os.replace(dest.writing, dest.target)
    except BaseException:
        dest.writing.unlink(missing_ok=True)
        raise
