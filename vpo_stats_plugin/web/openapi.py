"""The OpenAPI 3.0 document of the JSON API: the real description of every route."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..filters import STATUSES
from ..purging import PURGE_FILTERS, TOKEN_PATTERN
from .params import (
    BY_CHOICES,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    LIMIT_MIN,
    RUN_ID_PATTERN,
    SORT_CHOICES,
    WHEN_PATTERN,
)

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Schema], description: str = "") -> Schema:
    """A closed object: every property present, nothing else."""
    out: Schema = {
        "type": "object",
        "required": list(props),
        "properties": props,
        "additionalProperties": False,
    }
    if description:
        out["description"] = description
    return out


def _n(schema: Schema) -> Schema:
    """``schema`` or null."""
    return {**schema, "nullable": True}


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time", "description": "UTC ISO-8601 ending in Z"}
BYTES = {"type": "integer", "description": "bytes"}
STATUS = {"type": "string", "enum": list(STATUSES)}
WHEN_TEXT = (
    "ISO-8601 date or datetime (UTC unless it has an offset) or an age: 12h, 7d, 2w, 3mo, 1y"
)
WHEN: Schema = {
    "type": "string",
    "nullable": True,
    "pattern": WHEN_PATTERN,
    "description": f"WHEN: {WHEN_TEXT}",
}
TOKEN: Schema = {"type": "string", "pattern": TOKEN_PATTERN}
NOT_GIVEN: Schema = {"type": "string", "nullable": True, "maxLength": 0}


def _given(name: str) -> Schema:
    """``name`` is present with a value (not null, not empty)."""
    return {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}


TRACKS = _obj({kind: _n(INT) for kind in ("video", "audio", "subtitle", "attachment")})

RUN_PROPS: dict[str, Schema] = {
    "id": {"type": "string", "description": "UUIDv4"},
    "job_id": _n(STR),
    "file_id": {"nullable": True, "oneOf": [INT, STR], "description": "host library id, as given"},
    "path": STR,
    "output_path": _n(STR),
    "policy": _n(STR),
    "node": _n(STR),
    "status": STATUS,
    "started_at": TIME,
    "finished_at": _n(TIME),
    "duration_seconds": _n(NUM),
    "size_before_bytes": _n(BYTES),
    "size_after_bytes": _n(BYTES),
    "saved_bytes": _n(BYTES),
    "tracks_before": TRACKS,
    "tracks_after": TRACKS,
    "video_source_codec": _n(STR),
    "video_target_codec": _n(STR),
    "video_transcode_skipped": _n(BOOL),
    "video_skip_reason": _n(STR),
    "audio_tracks_transcoded": _n(INT),
    "audio_tracks_preserved": _n(INT),
    "encoder_type": _n(STR),
    "phases_completed": _n(INT),
    "phases_total": _n(INT),
    "total_changes": _n(INT),
    "hash_before": _n(STR),
    "hash_after": _n(STR),
    "error": _n(STR),
    "source": {"type": "string", "description": "hooks (recorded live) or vpo (import-vpo)"},
}
ANY_JSON: Schema = {"nullable": True, "description": "any JSON value"}
ACTION = _obj(
    {
        "type": STR,
        "track_type": _n(STR),
        "track_index": _n(INT),
        "before": ANY_JSON,
        "after": ANY_JSON,
        "success": BOOL,
        "duration_ms": _n(NUM),
        "rule": _n(STR),
        "message": _n(STR),
        "phase": _n(STR),
    }
)
PHASE = _obj(
    {
        "name": _n(STR),
        "wall_time_seconds": _n(NUM),
        "bytes_read": _n(BYTES),
        "bytes_written": _n(BYTES),
        "encoding_fps": _n(NUM),
        "encoding_bitrate": {**_n(NUM), "description": "bits per second"},
    }
)
FILTERS = _obj(
    {
        "since": _n(TIME),
        "until": _n(TIME),
        "policy": _n(STR),
        "node": _n(STR),
        "status": _n(STATUS),
    },
    "the filters applied, normalised (times as UTC instants)",
)
SIZE_PROPS = {
    "size_before_bytes": BYTES,
    "size_after_bytes": BYTES,
    "saved_bytes": BYTES,
    "saved_percent": _n(NUM),
}
POLICY_PROPS: dict[str, Schema] = {
    "policy": _n(STR),
    "runs": INT,
    "succeeded": INT,
    "failed": INT,
    "interrupted": INT,
    "running": INT,
    **SIZE_PROPS,
    "last_run_at": _n(TIME),
}
NODE_PROPS: dict[str, Schema] = {
    "node": _n(STR),
    **{k: v for k, v in POLICY_PROPS.items() if k != "policy"},
}
SCHEMAS: dict[str, Schema] = {
    "Error": _obj({"error": {"type": "string", "description": "what went wrong and what to do"}}),
    "Filters": FILTERS,
    "Tracks": TRACKS,
    "Run": _obj(RUN_PROPS, "one processing of one file"),
    "Action": ACTION,
    "Phase": PHASE,
    "RunDetail": _obj(
        {
            **RUN_PROPS,
            "actions": {"type": "array", "items": _ref("Action")},
            "phases": {"type": "array", "items": _ref("Phase")},
        },
        "a run with its actions and phases",
    ),
    "Summary": _obj(
        {
            "runs": INT,
            "succeeded": INT,
            "failed": INT,
            "interrupted": INT,
            "running": INT,
            "files": {"type": "integer", "description": "distinct paths"},
            **SIZE_PROPS,
            "tracks_removed": _obj({kind: INT for kind in ("audio", "subtitle", "attachment")}),
            "videos_transcoded": INT,
            "videos_transcode_skipped": INT,
            "audio_tracks_transcoded": INT,
            "audio_tracks_preserved": INT,
            "duration_seconds": _obj({"total": NUM, "mean": _n(NUM)}),
            "first_run_at": _n(TIME),
            "last_run_at": _n(TIME),
            "filters": _ref("Filters"),
        },
        "totals over the filtered runs",
    ),
    "PolicyRow": _obj(POLICY_PROPS),
    "PolicyList": _obj(
        {"policies": {"type": "array", "items": _ref("PolicyRow")}, "filters": _ref("Filters")}
    ),
    "NodeRow": _obj(NODE_PROPS, "the runs one node (machine) recorded"),
    "NodeList": _obj(
        {"nodes": {"type": "array", "items": _ref("NodeRow")}, "filters": _ref("Filters")}
    ),
    "PolicyDetail": _obj(
        {
            **POLICY_PROPS,
            "actions": {
                "type": "array",
                "items": _obj({"type": _n(STR), "count": INT, "failed": INT}),
            },
            "filters": _ref("Filters"),
        }
    ),
    "RunList": _obj(
        {"runs": {"type": "array", "items": _ref("Run")}, "filters": _ref("Filters")},
        "newest first",
    ),
    "FileRuns": _obj(
        {"path": STR, "runs": {"type": "array", "items": _ref("Run")}, "filters": _ref("Filters")},
        "every run of one file, oldest first",
    ),
    "Trend": _obj(
        {
            "by": {"type": "string", "enum": list(BY_CHOICES)},
            "points": {
                "type": "array",
                "items": _obj(
                    {
                        "period": {
                            "type": "string",
                            "description": "YYYY-MM-DD (day; week: its Monday) or YYYY-MM",
                        },
                        "runs": INT,
                        "succeeded": INT,
                        "failed": INT,
                        "interrupted": INT,
                        "running": INT,
                        "size_before_bytes": BYTES,
                        "size_after_bytes": BYTES,
                        "saved_bytes": BYTES,
                    }
                ),
            },
            "filters": _ref("Filters"),
        }
    ),
    "Codecs": _obj(
        {
            "transitions": {
                "type": "array",
                "items": _obj(
                    {
                        "source": _n({"type": "string", "description": "video codec before"}),
                        "target": _n(
                            {"type": "string", "description": "codec after; null: not transcoded"}
                        ),
                        "runs": INT,
                        "saved_bytes": BYTES,
                    }
                ),
            },
            "filters": _ref("Filters"),
        },
        "video codec transitions of the finished runs that recorded a codec, most runs first",
    ),
    "PurgeRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": (
            "which runs to purge, as the CLI's purge takes them: at least one filter, or all: "
            "true alone; before or until, not both. An empty string or null is a filter not "
            "given. With the token of a dry run, only the runs it counted (else 409)"
        ),
        "properties": {
            "before": {**WHEN, "description": "runs started before WHEN"},
            "since": {**WHEN, "description": "runs started at or after WHEN"},
            "until": {**WHEN, "description": "runs started at or before WHEN"},
            "policy": _n(STR),
            "node": _n(STR),
            "status": {"type": "string", "nullable": True, "enum": ["", *STATUSES, None]},
            "all": {"type": "boolean", "default": False, "description": "every finished run"},
            "dry_run": {"type": "boolean", "default": True, "description": "only count"},
            "token": {**TOKEN, "nullable": True},
        },
        "oneOf": [
            {
                "title": "every run",
                "required": ["all"],
                "properties": {
                    "all": {"type": "boolean", "enum": [True]},
                    **{name: NOT_GIVEN for name in PURGE_FILTERS},
                },
            },
            {
                "title": "filtered",
                "properties": {"all": {"type": "boolean", "enum": [False]}},
                "anyOf": [_given(name) for name in PURGE_FILTERS],
                "not": {"allOf": [_given("before"), _given("until")]},
            },
        ],
        "example": {"status": "failed", "until": "30d"},
    },
    "PurgeResult": _obj(
        {
            "matched": INT,
            "deleted": {"type": "integer", "description": "0 on a dry run"},
            "token": _n(
                {
                    **TOKEN,
                    "description": (
                        "a dry run's: send it back with dry_run false to delete exactly the "
                        "runs counted (null after deleting)"
                    ),
                }
            ),
        }
    ),
}

PARAMETERS: dict[str, Schema] = {
    "since": {
        "name": "since",
        "in": "query",
        "schema": {"type": "string", "pattern": WHEN_PATTERN},
        "example": "7d",
        "description": f"runs started at or after WHEN: {WHEN_TEXT}; empty: not given",
    },
    "until": {
        "name": "until",
        "in": "query",
        "schema": {"type": "string", "pattern": WHEN_PATTERN},
        "example": "1d",
        "description": (
            f"runs started at or before WHEN (a bare date: the whole day): {WHEN_TEXT}; "
            "empty: not given. An until before since selects no run (an empty answer)"
        ),
    },
    "policy": {"name": "policy", "in": "query", "schema": STR, "description": "policy name"},
    "node": {"name": "node", "in": "query", "schema": STR, "description": "node name"},
    "status": {
        "name": "status",
        "in": "query",
        "schema": {"type": "string", "enum": ["", *STATUSES]},
        "description": "run status; empty means any, as for the other filters",
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "schema": {
            "type": "integer",
            "minimum": LIMIT_MIN,
            "maximum": LIMIT_MAX,
            "default": LIMIT_DEFAULT,
        },
    },
    "by": {
        "name": "by",
        "in": "query",
        "schema": {"type": "string", "enum": list(BY_CHOICES), "default": "day"},
    },
    "sort": {
        "name": "sort",
        "in": "query",
        "schema": {"type": "string", "enum": list(SORT_CHOICES), "default": "runs"},
    },
}
FILTER_REFS = [
    {"$ref": f"#/components/parameters/{n}"} for n in ("since", "until", "policy", "node", "status")
]
# a route naming one policy: the name is its policy filter, so it takes no policy parameter
FILTER_REFS_BUT_POLICY = [p for p in FILTER_REFS if not p["$ref"].endswith("/policy")]


def _responses(schema: str, *errors: int) -> Schema:
    out: Schema = {
        "200": {"description": "OK", "content": {"application/json": {"schema": _ref(schema)}}}
    }
    texts = {
        400: "a parameter is invalid; the message names it",
        403: "refused: the request comes from another site",
        404: "no stats for the named run, file or policy",
        409: "the runs to purge are not the ones the token's dry run counted: nothing deleted",
        500: "the database cannot be used; the message says why",
    }
    for status in (*errors, 500):
        out[str(status)] = {
            "description": texts[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return out


def _get(op_id: str, summary: str, schema: str, params: list[Schema], *errors: int) -> Schema:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "parameters": params,
            "responses": _responses(schema, *errors),
        }
    }


def _p(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


def paths() -> dict[str, Schema]:
    """Every route of the API, relative to the mount point."""
    return {
        "/": {
            "get": {
                "operationId": "dashboard",
                "summary": "The dashboard page (HTML; filters and views in its query string)",
                "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
            }
        },
        "/api/summary": _get(
            "summary", "Totals over the filtered runs", "Summary", FILTER_REFS, 400
        ),
        "/api/policies": _get(
            "policies", "One row per policy", "PolicyList", [*FILTER_REFS, _p("sort")], 400
        ),
        "/api/nodes": _get(
            "nodes", "One row per node", "NodeList", [*FILTER_REFS, _p("sort")], 400
        ),
        "/api/policies/{name}": _get(
            "policy",
            "One policy: its totals and its actions by type",
            "PolicyDetail",
            [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": STR,
                    "description": "the policy (it is the policy filter: no policy parameter)",
                },
                *FILTER_REFS_BUT_POLICY,
            ],
            400,
            404,
        ),
        "/api/policy": _get(
            "policy_by_query",
            "The same as /api/policies/{name}, the name as a query parameter (works for . and ..)",
            "PolicyDetail",
            [
                {
                    "name": "name",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                    "description": "the policy's name (it is the policy filter: no policy parameter)",
                },
                *FILTER_REFS_BUT_POLICY,
            ],
            400,
            404,
        ),
        "/api/recent": _get(
            "recent", "Newest runs first", "RunList", [*FILTER_REFS, _p("limit")], 400
        ),
        "/api/trend": _get(
            "trend", "Runs and space saved per period", "Trend", [*FILTER_REFS, _p("by")], 400
        ),
        "/api/codecs": _get(
            "codecs",
            "Video codec transitions (source -> target) over the filtered runs",
            "Codecs",
            FILTER_REFS,
            400,
        ),
        "/api/files": _get(
            "file",
            "Every run of one file, oldest first",
            "FileRuns",
            [
                {
                    "name": "path",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                    "description": "the file's path as recorded",
                },
                *FILTER_REFS,
            ],
            400,
            404,
        ),
        "/api/runs/{id}": _get(
            "run",
            "One run with its actions and phases",
            "RunDetail",
            [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": RUN_ID_PATTERN},
                    "description": (
                        "the run id or a unique prefix of it: 8 or more characters, no white space"
                    ),
                }
            ],
            400,
            404,
        ),
        "/api/purge": {
            "post": {
                "operationId": "purge",
                "summary": "Count (dry run, the default) or delete the matching runs",
                "description": (
                    "A dry run (the default) counts the runs and answers a token of that set; "
                    "sent back with dry_run false, it deletes exactly those runs, resolving "
                    "relative times (7d) as the dry run did, or nothing with 409 when the set "
                    "changed (runs recorded, finished or deleted since). Without a token, what "
                    "matches now is deleted. Refused with 403 when the request's Origin is "
                    "another site's or its Sec-Fetch-Site is cross-site; a request with neither "
                    "header is allowed."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PurgeRequest")}},
                },
                "responses": _responses("PurgeResult", 400, 403, 409),
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/metrics": METRICS_PATH,
    }


# GET /metrics: Prometheus' formats, not JSON (docs/metrics.md)
_EXPOSITION = {"schema": {"type": "string"}}
METRICS_PATH: Schema = {
    "get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics: text format, or OpenMetrics when Accept asks for it",
        "responses": {
            "200": {
                "description": "the exposition (docs/metrics.md names every metric)",
                "content": {"text/plain": _EXPOSITION, "application/openmetrics-text": _EXPOSITION},
            },
            "500": _responses("Error")["500"],
        },
    }
}


def openapi_document(server_url: str = "/stats") -> dict[str, Any]:
    """The OpenAPI document, with the mount point the request came through as its server."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "vpo-stats-plugin API",
            "version": __version__,
            "description": (
                "Statistics of VPO file processing. Bodies are the same as the CLI's "
                '`--format json` for the same filters. Errors answer {"error": message}.'
            ),
        },
        "servers": [{"url": server_url}],
        "paths": paths(),
        "components": {"schemas": SCHEMAS, "parameters": PARAMETERS},
    }
