"""Cached data access for the pages: the one module that talks to the API through Streamlit caches.

Every cached result is keyed on the API base URL, so one process can serve several collectors.
"""

from __future__ import annotations

import streamlit as st

from dashboard.client import ApiClient, api_base

RESULT_TTL_S = 2


@st.cache_resource
def _client(base_url: str) -> ApiClient:
    return ApiClient(base_url)


@st.cache_data(ttl=RESULT_TTL_S, show_spinner=False)
def _get(base_url: str, path: str, params: tuple[tuple[str, object], ...] = ()) -> dict:
    return _client(base_url).get(path, dict(params))


def report() -> dict:
    return _get(api_base(), "report")


def recent_messages(limit: int = 50) -> list[dict]:
    return _get(api_base(), "messages", (("limit", limit),))["messages"]


def health() -> dict:
    return _get(api_base(), "health")
