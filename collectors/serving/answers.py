"""JSON answers of the HTTP server: strict JSON, never ``NaN`` or ``Infinity``.

Python's json writes float NaN and infinities as bare ``NaN``/``Infinity``, which no JSON parser
but Python's accepts. A stored metric value or attribute can be one, so every answer is written with
``allow_nan=False``; in the rare answer that holds one, each non-finite float becomes null.
"""

from __future__ import annotations

import json
import math

from collectors.ingest.receiver import JSON, Reply


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dumps(payload: object) -> bytes:
    """Strict JSON bytes of an answer; non-finite floats are written as null."""
    try:
        return json.dumps(payload, default=str, allow_nan=False).encode()
    except ValueError:  # only when the payload holds a non-finite float: rare, so the common case stays one pass
        return json.dumps(_finite(payload), default=str, allow_nan=False).encode()


def reply(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An application/json Reply; an error payload's ``error`` is its message (logged with refusals)."""
    message = payload.get("error", "") if isinstance(payload, dict) else ""
    return Reply(status, JSON, dumps(payload), headers, message=str(message))
