"""The optional bearer token (``EVENTSCOPE_TOKEN``) on OTLP ingest and the query API.

Without a token everything is open, as on a developer's machine (every listener binds 127.0.0.1 by
default). With one, each request must carry ``Authorization: Bearer <token>`` (gRPC: metadata
``authorization``); the comparison takes the same time whatever the first wrong byte, so the token
cannot be guessed byte by byte from answer times.
"""

from __future__ import annotations

import hmac

SCHEME = "Bearer "


class Bearer:
    """Checks an Authorization header value against the configured token (or allows all without one)."""

    def __init__(self, token: str | None):
        self._expected = (SCHEME + token).encode() if token else None

    def allows(self, authorization: str | None) -> bool:
        """True without a token, or when ``authorization`` is exactly ``Bearer <token>``."""
        if self._expected is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        given = (SCHEME + credentials.strip()).encode("utf-8", "replace")  # the scheme's case does not matter
        return scheme.lower() == SCHEME.strip().lower() and hmac.compare_digest(given, self._expected)


def header(token: str | None) -> dict[str, str]:
    """The request header a client sends for ``token`` (none without one)."""
    return {"Authorization": SCHEME + token} if token else {}
