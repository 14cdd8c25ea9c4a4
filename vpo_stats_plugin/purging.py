"""What a purge selects, in the same words for the CLI and the API: which filters may go
together, ``before``, and the token that pins the set of runs a dry run counted (stdlib only)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import BadParameter, StatsError
from .filters import iso, parse_when

PURGE_FILTERS = ("before", "since", "until", "policy", "node", "status")
TOKEN_PATTERN = r"^p1\.[0-9]{1,16}\.[0-9]{1,12}\.[0-9a-f]{32}$"
_TOKEN = re.compile(TOKEN_PATTERN[:-1] + r"\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MODULUS = 1 << 128


class SetChanged(StatsError):
    """The runs a purge would delete are no longer the ones its dry run counted."""

    exit_code = 1
    http_status = 409


def check_combination(
    given: Collection[str], everything: bool, spell: Callable[[str], str] = str
) -> None:
    """The CLI's rules for the purge filters named in ``given``; ``spell`` names a parameter as
    its caller's user typed it (``--before`` or ``before``)."""
    if "before" in given and "until" in given:
        raise BadParameter(spell("before"), f"give {spell('before')} or {spell('until')}, not both")
    if everything and given:
        others = ", ".join(spell(name) for name in PURGE_FILTERS if name in given)
        raise BadParameter(
            spell("all"), f"{spell('all')} deletes every run: give it alone, without {others}"
        )


def until_before(before: str, now: datetime) -> str:
    """``before WHEN`` as the inclusive ``until`` bound the filters take (raises ValueError)."""
    return iso(parse_when(before, now=now) - timedelta(microseconds=1))


def set_digest(ids: Iterable[str]) -> tuple[int, str]:
    """How many ``ids`` there are and a digest of them as a set (any order gives the same)."""
    count, total = 0, 0
    for run_id in ids:
        count += 1
        digest = hashlib.blake2b(run_id.encode("utf-8", "surrogatepass"), digest_size=16)
        total += int.from_bytes(digest.digest(), "big")
    return count, f"{total % _MODULUS:032x}"


@dataclass(frozen=True)
class Token:
    """What a dry run counted: when its filters were resolved, how many runs, their digest.

    A purge given the token resolves relative times (``7d``) at ``at`` again, and deletes only
    if the runs it selects are exactly those (the same count and digest), else ``SetChanged``.
    """

    at: datetime
    matched: int
    digest: str

    def __str__(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"p1.{micros}.{self.matched}.{self.digest}"

    @classmethod
    def parse(cls, text: str, param: str = "token") -> Token:
        """The token of a dry run's answer; a ``BadParameter`` naming ``param`` otherwise."""
        if not isinstance(text, str) or not _TOKEN.match(text):
            raise BadParameter(
                param, "is not a token from a dry run's answer: preview the purge again"
            )
        _, micros, matched, digest = text.split(".")
        return cls(_EPOCH + timedelta(microseconds=int(micros)), int(matched), digest)

    def check(self, matched: int, digest: str) -> None:
        """Raise ``SetChanged`` unless ``matched`` runs with ``digest`` are the runs counted."""
        if (matched, digest) == (self.matched, self.digest):
            return
        now = f"{matched} match now" if matched != self.matched else "as many match now"
        raise SetChanged(
            f"the runs to delete changed since the preview: it counted {self.matched}, "
            f"{now}{'' if matched != self.matched else ' but not the same ones'}; "
            "nothing was deleted. Preview again to see what would go"
        )
