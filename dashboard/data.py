"""Cached data access for the pages: the one module that talks to the API through Streamlit caches.

Every cached result is keyed on the API base URL, so one process can serve several collectors.
Errors are never cached: a page retries on its next refresh.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

import streamlit as st

from dashboard.client import ApiClient, ApiUnavailable, api_base

RESULT_TTL_S = 2
NAMES_TTL_S = 15
"""Filter choices change slowly; asking for them on every refresh would double the load."""


@st.cache_resource
def _client(base_url: str) -> ApiClient:
    return ApiClient(base_url)


@st.cache_data(ttl=RESULT_TTL_S, show_spinner=False)
def _get(base_url: str, path: str, params: tuple[tuple[str, object], ...] = ()) -> dict:
    return _client(base_url).get(path, dict(params))


def _fetch(path: str, params: Mapping[str, object] | None = None) -> dict:
    kept = tuple(sorted((k, v) for k, v in (params or {}).items() if v is not None and v != ""))
    return _get(api_base(), path, kept)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def api_url(path: str, params: Mapping[str, object] | None = None) -> str:
    """The API URL of a view, shown on pages so users can script the same query."""
    return _client(api_base()).url(path, params)


def health() -> dict:
    return _fetch("health")


def report() -> dict:
    return _fetch("report")


def recent_messages(limit: int = 50) -> list[dict]:
    return _fetch("messages", {"limit": limit})["messages"]


def overview(params: Mapping[str, object]) -> dict:
    return _fetch("overview", params)


def flow(params: Mapping[str, object]) -> dict:
    return _fetch("flow", params)


def latency(params: Mapping[str, object], by: str, bucket_s: int) -> dict:
    return _fetch("latency", {**params, "by": by, "bucket_s": bucket_s})


def loss(params: Mapping[str, object]) -> dict:
    return _fetch("loss", params)


def sequences(params: Mapping[str, object], stream: Mapping[str, object], vantage: str) -> dict:
    return _fetch("sequences", {**params, **stream, "vantage": vantage})


def duplicates(params: Mapping[str, object]) -> dict:
    return _fetch("duplicates", params)


def traces(params: Mapping[str, object]) -> dict:
    return _fetch("traces", params)


def trace(trace_id: str) -> dict:
    return _fetch(f"traces/{_segment(trace_id)}")


def event(event_id: str) -> dict:
    return _fetch(f"events/{_segment(event_id)}")


def dead_letters(params: Mapping[str, object]) -> dict:
    return _fetch("dead-letters", params)


def broker(params: Mapping[str, object]) -> dict:
    return _fetch("broker", params)


def instrumentation(params: Mapping[str, object]) -> dict:
    return _fetch("instrumentation", params)


@st.cache_data(ttl=NAMES_TTL_S, show_spinner=False)
def _known_names(base_url: str) -> dict[str, list[str]]:
    client = _client(base_url)
    names: dict[str, set[str]] = {"channel": set(), "group": set(), "service": set(), "type": set()}
    try:
        for stream in client.get("report")["streams"]:
            names["channel"].add(stream["channel"])
            if stream["vantage"] != "bus":
                names["group"].add(stream["vantage"])
        for message in client.get("messages", {"limit": 200})["messages"]:
            if message.get("Type"):
                names["type"].add(message["Type"])
        for node in client.get("flow")["nodes"]:
            kind, _, name = node["id"].partition(":")
            names["service" if kind == "service" else "channel"].add(name)
    except ApiUnavailable:
        pass  # choices are a convenience: typed names work as well
    return {key: sorted(values) for key, values in names.items()}


def known_names() -> dict[str, list[str]]:
    """Channel, consumer group, event type and service names seen so far, for the filter choices."""
    return _known_names(api_base())
