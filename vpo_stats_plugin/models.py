"""What the hooks receive: the host's objects or mappings, validated field by field.

A bad optional field is dropped (and reported); only a bad required field rejects the payload,
so a host with one odd value still gets the rest of its file recorded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

TrackType = Literal["video", "audio", "subtitle", "attachment"]


class PayloadError(ValueError):
    """A hook payload missing a required field, or not an object at all."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _text(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class Track(_Payload):
    type: TrackType
    codec: str | None = None
    language: str | None = None


class Phase(_Payload):
    name: str | None = None
    wall_time_seconds: float | None = None
    bytes_read: int | None = None
    bytes_written: int | None = None
    encoding_fps: float | None = None
    encoding_bitrate: float | None = None


class Job(_Payload):
    id: str
    path: str
    policy: str | None = None
    file_id: int | str | None = None
    node: str | None = None
    phases_total: int | None = None
    tracks: list[Track] | None = None

    _as_text = field_validator("id", "path", "policy", "node", mode="before")(_text)

    @field_validator("id", "path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Action(_Payload):
    success: bool
    type: str | None = None
    track_type: str | None = None
    track_index: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    duration_ms: float | None = None
    rule: str | None = None
    message: str | None = None
    phase: str | None = None


class Result(_Payload):
    success: bool
    error: str | None = None
    output_path: str | None = None
    phases_completed: int | None = None
    tracks: list[Track] | None = None
    video_source_codec: str | None = None
    video_target_codec: str | None = None
    video_transcode_skipped: bool | None = None
    video_skip_reason: str | None = None
    audio_tracks_transcoded: int | None = None
    audio_tracks_preserved: int | None = None
    total_changes: int | None = None
    encoder_type: Literal["hardware", "software"] | None = None
    phases: list[Phase] | None = None

    _as_text = field_validator("output_path", "error", mode="before")(_text)


M = TypeVar("M", bound=_Payload)
_MISSING = object()


def _fields_of(payload: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(payload, Mapping):
        return {n: payload[n] for n in names if n in payload}
    if payload is None or isinstance(payload, (str, bytes, int, float, bool, list, tuple)):
        raise PayloadError(f"expected an object or a mapping, got {type(payload).__name__}")
    out = {}
    for name in names:
        try:
            value = getattr(payload, name, _MISSING)
        except Exception:  # a host property that raises is treated as absent
            continue
        if value is not _MISSING:
            out[name] = value
    return out


def job_id(payload: Any) -> str | None:
    """The job's id when it is plainly usable (text, not blank), else None: the hooks after
    before-file need only this, so they skip validating the whole job again."""
    try:
        value = payload.get("id") if isinstance(payload, Mapping) else getattr(payload, "id", None)
    except Exception:
        return None
    value = _text(value)
    return value if isinstance(value, str) and value.strip() else None


def _nested(value: Any, model: type[_Payload]) -> Any:
    if not isinstance(value, (list, tuple)):
        return value
    items = []
    for item in value:
        try:
            items.append(_fields_of(item, list(model.model_fields)))
        except PayloadError:
            continue
    return items


def parse(model: type[M], payload: Any) -> tuple[M, list[str]]:
    """Validate ``payload`` as ``model``; answers the model and the names of dropped fields."""
    data = _fields_of(payload, list(model.model_fields))
    for name, nested in (("tracks", Track), ("phases", Phase)):
        if name in data:
            data[name] = _nested(data[name], nested)
    dropped: list[str] = []
    for _ in range(len(model.model_fields) + 1):
        try:
            return model.model_validate(data), dropped
        except ValidationError as err:
            bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
            required = [n for n in bad if model.model_fields[n].is_required()]
            if required or not bad:
                raise PayloadError(
                    f"{model.__name__.lower()} has no usable {', '.join(sorted(required)) or 'fields'}"
                ) from None
            for name in bad:
                if name in ("tracks", "phases") and isinstance(data.get(name), list):
                    # keep the good entries of a list, drop the bad ones
                    bad_items = {
                        e["loc"][1]
                        for e in err.errors()
                        if e["loc"][0] == name and len(e["loc"]) > 1
                    }
                    if bad_items:
                        data[name] = [x for i, x in enumerate(data[name]) if i not in bad_items]
                        dropped.append(f"{name}[{', '.join(map(str, sorted(bad_items)))}]")
                        continue
                data.pop(name, None)
                dropped.append(name)
    raise PayloadError(f"{model.__name__.lower()} could not be validated")
