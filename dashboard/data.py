"""Cached data access for the pages: the one module that talks to the API through Streamlit caches.

Every cached result is keyed on the API base URL, so one process can serve several collectors.
Errors are never cached: a page retries on its next refresh.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping

import streamlit as st

from dashboard import colors
from dashboard.client import ApiClient, ApiUnavailable, api_base, api_token
from dashboard.flow_nodes import node_name

RESULT_TTL_S = 2
SLOW_RESULT_TTL_S = 30
"""A query that took longer than SLOW_QUERY_S is reused this long: live refreshes must not pile up
slow queries on a big store."""
SLOW_QUERY_S = 1.0
NAMES_TTL_S = 15
"""Filter choices change slowly; asking for them on every refresh would add load for nothing."""
NAMES_SAMPLE = 1000
"""Recent bus messages read for channel and type choices (a cheap query at any store size)."""


@st.cache_resource
def _client(base_url: str) -> ApiClient:
    return ApiClient(base_url, api_token())


@st.cache_resource
def _durations(base_url: str) -> dict[str, float]:
    return {}  # seconds the last answer of each path took, shared by every session


def _timed(base_url: str, path: str, params: tuple) -> dict:
    started = time.perf_counter()
    answer = _client(base_url).get(path, dict(params))
    _durations(base_url)[path.split("/")[0]] = time.perf_counter() - started
    return answer


@st.cache_data(ttl=RESULT_TTL_S, show_spinner=False)
def _get(base_url: str, path: str, params: tuple[tuple[str, object], ...] = ()) -> dict:
    return _timed(base_url, path, params)


@st.cache_data(ttl=SLOW_RESULT_TTL_S, show_spinner=False)
def _get_slow(base_url: str, path: str, params: tuple[tuple[str, object], ...] = ()) -> dict:
    return _timed(base_url, path, params)


def _fetch(path: str, params: Mapping[str, object] | None = None) -> dict:
    kept = tuple(sorted((k, v) for k, v in (params or {}).items() if v is not None and v != ""))
    base = api_base()
    slow = _durations(base).get(path.split("/")[0], 0.0) > SLOW_QUERY_S
    return (_get_slow if slow else _get)(base, path, kept)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def api_url(path: str, params: Mapping[str, object] | None = None) -> str:
    """The API URL of a view, shown on pages so users can script the same query."""
    return _client(api_base()).url(path, params)


def health() -> dict:
    """The collectors' health: store counts and the bus tap's state."""
    return _fetch("health")


def report() -> dict:
    """Per-stream counts at every vantage point (everything stored)."""
    return _fetch("report")


def recent_messages(limit: int = 50) -> list[dict]:
    """The latest bus messages, newest first."""
    return _fetch("messages", {"limit": limit})["messages"]


def overview(params: Mapping[str, object]) -> dict:
    """The headline numbers for the window and filters."""
    return _fetch("overview", params)


def flow(params: Mapping[str, object]) -> dict:
    """Services and channels as nodes, publish/deliver/link edges (their names join the colour palette)."""
    answer = _fetch("flow", params)
    _names_seen(api_base()).update(flow_names(answer))
    return answer


def latency(params: Mapping[str, object], by: str, bucket_s: int) -> dict:
    """Latency percentiles per key and over time, with samples for histograms."""
    return _fetch("latency", {**params, "by": by, "bucket_s": bucket_s})


def loss(params: Mapping[str, object]) -> dict:
    """Lost events and where each was lost."""
    return _fetch("loss", params)


def sequences(params: Mapping[str, object], stream: Mapping[str, object], vantage: str) -> dict:
    """One stream's arrivals at one vantage point, with its gaps."""
    return _fetch("sequences", {**params, **stream, "vantage": vantage})


def duplicates(params: Mapping[str, object]) -> dict:
    """Duplicated events per vantage point, handled vs processed."""
    return _fetch("duplicates", params)


def traces(params: Mapping[str, object]) -> dict:
    """Trace search results."""
    return _fetch("traces", params)


def trace(trace_id: str) -> dict:
    """One trace with its links both ways and its critical path."""
    return _fetch(f"traces/{_segment(trace_id)}")


def event(event_id: str) -> dict:
    """The life of one event by id."""
    return _fetch(f"events/{_segment(event_id)}")


def dead_letters(params: Mapping[str, object]) -> dict:
    """The dead-lettered deliveries."""
    return _fetch("dead-letters", params)


def retries(params: Mapping[str, object], limit: int = 200) -> dict:
    """Deliveries that took more than one attempt, newest first, and how they ended."""
    return _fetch("retries", {**params, "limit": limit})


def clock_skew(params: Mapping[str, object], limit: int = 50) -> dict:
    """Deliveries that started before their event was published, per pair of services."""
    return _fetch("clock-skew", {**params, "limit": limit})


def slow_consumers(params: Mapping[str, object]) -> dict:
    """Consumer groups that fell behind their peers, episode by episode."""
    return _fetch("slow-consumers", params)


def answer(path: str, params: Mapping[str, object]) -> dict:
    """Any read-only API answer by path (the Scenarios page gathers every detector's)."""
    return _fetch(path, params)


def contracts(params: Mapping[str, object]) -> dict:
    """Contract findings against the collectors' schema registry (``registry`` None when they have none)."""
    return _fetch("contracts", params)


def contracts_observed(params: Mapping[str, object]) -> dict:
    """Who sent and received each event type and schema version (no payloads: the page shows no data)."""
    return _fetch("contracts/observed", {**params, "payloads": 0})


def broker(params: Mapping[str, object]) -> dict:
    """The latest broker sample and the series over the window."""
    return _fetch("broker", params)


def instrumentation(params: Mapping[str, object]) -> dict:
    """What the telemetry lacks for the analyses."""
    return _fetch("instrumentation", params)


@st.cache_data(ttl=NAMES_TTL_S, show_spinner=False)
def _known_names(base_url: str) -> dict[str, list[str]]:
    names: dict[str, set[str]] = {"channel": set(), "group": set(), "service": set(), "type": set()}
    try:
        for message in _client(base_url).get("messages", {"limit": NAMES_SAMPLE})["messages"]:
            names["channel"].add(message["channel"] or "")
            names["type"].add(message["type"] or "")
    except ApiUnavailable:
        pass  # choices are a convenience: typed names work as well
    return {key: sorted(values - {""}) for key, values in names.items()}


def flow_names(flow: dict) -> set[str]:
    """Every service, channel and consumer group a flow answer names."""
    names = {node_name(node["id"])[1] for node in flow["nodes"]}
    return names | {node_name(edge["target"])[1] for edge in flow["edges"] if edge["kind"] == "deliver"}


@st.cache_resource
def _names_seen(base_url: str) -> set[str]:
    return set()  # every service, channel and group a flow answer named, shared by every session


def palette() -> dict[str, str]:
    """A distinct colour for every service, channel and group seen so far (in any flow answer, and the channels
    of recent bus messages), so a name has one colour on every chart of every page. It costs no query: names
    only join it, so a colour moves only when a new name takes the colour it had."""
    base = api_base()
    return colors.assign(_names_seen(base) | set(_known_names(base)["channel"]))


def remember_flow_names(flow: dict) -> None:
    """Keep the services and consumer groups a flow answer named, as filter choices for every page."""
    seen = st.session_state.setdefault("eventscope_flow_names", {"service": set(), "group": set()})
    for node in flow["nodes"]:
        kind, name = node_name(node["id"])
        if kind == "service":
            seen["service"].add(name)
    for edge in flow["edges"]:
        if edge["kind"] == "deliver":
            seen["group"].add(node_name(edge["target"])[1])


def known_names() -> dict[str, list[str]]:
    """Channel, consumer group, event type and service names seen so far, for the filter choices: channels
    and types from recent bus messages, services and groups from the flow graph once the Overview showed it."""
    names = dict(_known_names(api_base()))
    for key, values in st.session_state.get("eventscope_flow_names", {}).items():
        names[key] = sorted(set(names.get(key, [])) | values)
    return names
