"""A small HTTP client for the collectors' query API. No Streamlit here; pages get it via data.py.

Errors are split by what the page should say: the collectors are unreachable, the thing asked for does
not exist, or the request was refused.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

ENV_API = "EVENTSCOPE_API"
ENV_TOKEN = "EVENTSCOPE_TOKEN"
"""When set, every request carries ``Authorization: Bearer <token>`` (collectors started with the same token
refuse requests without it)."""
DEFAULT_API = "http://127.0.0.1:4318"
TIMEOUT_S = 10.0


class ApiUnavailable(RuntimeError):
    """The collectors could not be reached or answered with an error; the message says which."""


class NotFound(ApiUnavailable):
    """The collectors answered 404: nothing is known of the id asked for (a trace, an event); the message is theirs."""


class BadRequest(ApiUnavailable):
    """The collectors refused a parameter (400); the message is theirs."""


class Unauthorized(ApiUnavailable):
    """The collectors require a bearer token (401) and this dashboard sent none, or the wrong one."""


class ServerError(ApiUnavailable):
    """The collectors were reached but failed to answer (5xx); their log says why."""


def api_base(environ: Mapping[str, str] = os.environ) -> str:
    """The collectors' base URL from EVENTSCOPE_API, without a trailing slash."""
    return (environ.get(ENV_API) or DEFAULT_API).rstrip("/")


def api_token(environ: Mapping[str, str] = os.environ) -> str:
    """The bearer token from EVENTSCOPE_TOKEN, or "" when requests go without one."""
    return (environ.get(ENV_TOKEN) or "").strip()


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")


def _http_error(url: str, exc: urllib.error.HTTPError) -> ApiUnavailable:
    text = _error_text(exc.read())
    if exc.code == 404:
        return NotFound(text or f"{url} answered 404")
    if exc.code == 400:
        return BadRequest(text)
    if exc.code == 401:
        return Unauthorized(f"{url} answered 401: set {ENV_TOKEN} to the collectors' token")
    if exc.code >= 500:
        return ServerError(f"{url} answered {exc.code}: {text}")
    return ApiUnavailable(f"{url} answered {exc.code}: {text}")


class ApiClient:
    """GETs JSON from one collectors process."""

    def __init__(self, base_url: str, token: str = ""):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def url(self, path: str, params: Mapping[str, object] | None = None) -> str:
        """The full URL of ``/api/v1/{path}`` with the non-empty parameters."""
        kept = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        query = f"?{urllib.parse.urlencode(kept)}" if kept else ""
        return f"{self.base_url}/api/v1/{path.lstrip('/')}{query}"

    def get(self, path: str, params: Mapping[str, object] | None = None) -> dict:
        """GET ``/api/v1/{path}`` and decode its JSON; raise an ApiUnavailable subclass on any failure."""
        url = self.url(path, params)
        try:
            request = urllib.request.Request(url, headers=self._headers)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise _http_error(url, exc) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiUnavailable(f"cannot reach the collectors at {self.base_url}: {exc}") from None
