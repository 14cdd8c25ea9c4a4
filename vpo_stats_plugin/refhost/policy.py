"""A small track policy: which audio and subtitle languages to keep, and an optional video codec.

Untagged tracks (no language, or ``und``) are kept unless ``keep_untagged`` is false: nothing
says what language they are, and dropping them could silently remove the only usable audio.
A file never loses all its audio: when no audio track matches, the default (else the first) stays.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Target video codec -> ffmpeg encoder and its options (software encoders only). The options
# carry no stream specifier: the processor adds the output stream's index to each.
VIDEO_ENCODERS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p"),
    "hevc": ("libx265", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p"),
    "mpeg4": ("mpeg4", "-qscale", "5"),
    "vp9": ("libvpx-vp9", "-deadline", "realtime", "-crf", "35", "-b", "0"),
}
UNTAGGED = "und"
_KEYS = ("name", "keep_audio", "keep_subtitles", "keep_untagged", "video_codec")


class PolicyError(ValueError):
    """A policy value or file that cannot be used; the message names it."""


@dataclass(frozen=True)
class Policy:
    """What to keep and what to convert; ``None`` for a keep list means keep every language."""

    name: str = "default"
    keep_audio: tuple[str, ...] | None = None
    keep_subtitles: tuple[str, ...] | None = None
    keep_untagged: bool = True
    video_codec: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise PolicyError("policy name must not be empty")
        for field in ("keep_audio", "keep_subtitles"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, tuple(_language(v, field) for v in value))
        if self.video_codec is not None:
            codec = self.video_codec.strip().lower()
            if codec not in VIDEO_ENCODERS:
                raise PolicyError(
                    f"video_codec {self.video_codec!r} is not supported; "
                    f"use one of {', '.join(VIDEO_ENCODERS)}"
                )
            object.__setattr__(self, "video_codec", codec)

    def keeps(self, track_type: str, language: str | None) -> bool:
        """Whether a track of this type and language passes the policy's language lists."""
        keep = {"audio": self.keep_audio, "subtitle": self.keep_subtitles}.get(track_type)
        if keep is None:
            return True
        lang = normalize_language(language)
        return lang in keep or (lang == UNTAGGED and self.keep_untagged)

    def rule(self, track_type: str) -> str:
        """The rule text recorded on an action this policy asked for."""
        if track_type == "video":
            return f"video_codec={self.video_codec}"
        keep = self.keep_audio if track_type == "audio" else self.keep_subtitles
        name = "keep_audio" if track_type == "audio" else "keep_subtitles"
        listed = ",".join(keep or ()) or "none"
        return f"{name}={listed}" + ("" if self.keep_untagged else " keep_untagged=false")


def normalize_language(language: str | None) -> str:
    """Lower-case language tag, ``und`` for a missing or empty one."""
    return (language or "").strip().lower() or UNTAGGED


def _language(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{field} holds {value!r}; expected language codes such as 'eng'")
    return value.strip().lower()


def parse_languages(text: str | None) -> tuple[str, ...] | None:
    """CLI list ``eng,fra`` -> tuple; ``all`` or nothing -> None (keep all); ``none`` -> ()."""
    if text is None or text.strip().lower() == "all":
        return None
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def policy_from_mapping(data: Mapping[str, Any], *, source: str = "policy") -> Policy:
    """Build a policy from a mapping such as a parsed TOML file; unknown keys are an error."""
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise PolicyError(
            f"{source}: unknown key {unknown[0]!r}; accepted keys: {', '.join(_KEYS)}"
        )
    values: dict[str, Any] = {}
    for key in ("keep_audio", "keep_subtitles"):
        if key in data:
            value = data[key]
            if not isinstance(value, list):
                raise PolicyError(f'{source}: {key} must be a list such as ["eng"]')
            values[key] = tuple(value)
    if "keep_untagged" in data:
        if not isinstance(data["keep_untagged"], bool):
            raise PolicyError(f"{source}: keep_untagged must be true or false")
        values["keep_untagged"] = data["keep_untagged"]
    for key in ("name", "video_codec"):
        if key in data:
            if not isinstance(data[key], str):
                raise PolicyError(f"{source}: {key} must be a string")
            values[key] = data[key]
    try:
        return Policy(**values)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None


def load_policy(path: str | Path) -> Policy:
    """Read a policy from a TOML file (top-level keys, or a ``[policy]`` table)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file {path} cannot be read: {exc}") from None
    if isinstance(data.get("policy"), dict) and len(data) == 1:
        data = data["policy"]
    if "name" not in data:
        data = {**data, "name": path.stem}
    return policy_from_mapping(data, source=str(path))


def merge(policy: Policy, overrides: Mapping[str, Any]) -> Policy:
    """The policy with each given override applied (a None keep list means keep all)."""
    values = dict(overrides)
    unknown: Iterable[str] = set(values) - set(_KEYS)
    if unknown:
        raise PolicyError(f"unknown policy field {sorted(unknown)[0]!r}")
    current = {k: getattr(policy, k) for k in _KEYS}
    return Policy(**{**current, **values})
