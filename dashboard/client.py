"""A small HTTP client for the collectors' query API. No Streamlit here; pages get it via data.py."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

ENV_API = "EVENTSCOPE_API"
DEFAULT_API = "http://127.0.0.1:4318"
TIMEOUT_S = 10.0


class ApiUnavailable(RuntimeError):
    """The collectors could not be reached or answered with an error; the message says which."""


def api_base(environ: Mapping[str, str] = os.environ) -> str:
    return (environ.get(ENV_API) or DEFAULT_API).rstrip("/")


class ApiClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def get(self, path: str, params: Mapping[str, object] | None = None) -> dict:
        """GET ``/api/v1/{path}`` and decode its JSON; raise ApiUnavailable on any failure."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.base_url}/api/v1/{path.lstrip('/')}{query}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise ApiUnavailable(f"{url} answered {exc.code}: {exc.read()[:200].decode(errors='replace')}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiUnavailable(f"cannot reach the collectors at {self.base_url}: {exc}") from None
