"""The view's state in the URL: time window, live or paused, and the channel/group/type/service filters.

Everything a view depends on lives in ``st.query_params`` so that a copied link reproduces it. The
pure half turns query parameters into a Filters value and back, and into API parameters; the
Streamlit half draws the sidebar controls and keeps the URL in step across pages.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

import streamlit as st

WINDOWS_S: dict[str, int | None] = {"5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "all": None}
"""Time windows offered in the sidebar, by their URL spelling; None means everything stored."""
WINDOW_LABELS = {
    "5m": "Last 5 minutes",
    "15m": "Last 15 minutes",
    "1h": "Last hour",
    "6h": "Last 6 hours",
    "all": "Everything",
}
DEFAULT_WINDOW = "15m"
FILTER_KEYS = ("channel", "group", "type", "service")
"""The analysis filters every query API endpoint accepts, spelled as in the API and the URL."""
PAUSED_KEY = "paused"
WINDOW_KEY = "window"
WINDOW_STEP_S = 2
"""Window edges are rounded to this, so cached answers are reused between quick reruns."""
_SESSION_KEY = "eventscope_filters"


@dataclass(frozen=True)
class Filters:
    """What every page shows: a window, live or paused, and optional name filters."""

    window: str = DEFAULT_WINDOW
    paused: bool = False
    channel: str = ""
    group: str = ""
    type: str = ""
    service: str = ""

    def active(self) -> dict[str, str]:
        """The name filters that are set."""
        return {key: getattr(self, key) for key in FILTER_KEYS if getattr(self, key)}


def from_query(params: Mapping[str, str]) -> Filters:
    """Filters from URL query parameters; unknown windows fall back to the default."""
    window = params.get(WINDOW_KEY, DEFAULT_WINDOW)
    return Filters(
        window=window if window in WINDOWS_S else DEFAULT_WINDOW,
        paused=params.get(PAUSED_KEY, "") in ("1", "true"),
        **{key: str(params.get(key, "") or "").strip() for key in FILTER_KEYS},
    )


def to_query(filters: Filters) -> dict[str, str]:
    """The URL query parameters for filters, leaving out defaults so links stay short."""
    query = {key: value for key, value in filters.active().items()}
    if filters.window != DEFAULT_WINDOW:
        query[WINDOW_KEY] = filters.window
    if filters.paused:
        query[PAUSED_KEY] = "1"
    return query


def api_params(filters: Filters, now_ns: int | None = None) -> dict[str, object]:
    """Query API parameters for filters: since_ns from the window (rounded), plus the name filters."""
    params: dict[str, object] = dict(filters.active())
    seconds = WINDOWS_S[filters.window]
    if seconds is not None:
        now_ns = time.time_ns() if now_ns is None else now_ns
        step = WINDOW_STEP_S * 1_000_000_000
        params["since_ns"] = (now_ns // step) * step - seconds * 1_000_000_000
    return params


def with_filter(filters: Filters, key: str, value: str) -> Filters:
    """Filters with one name filter set (or cleared with an empty value)."""
    if key not in FILTER_KEYS:
        raise ValueError(f"unknown filter {key!r}")
    return replace(filters, **{key: value})


def describe(filters: Filters) -> str:
    """One line saying what the page is limited to, for captions."""
    parts = [f"{key} = {value}" for key, value in filters.active().items()]
    return (WINDOW_LABELS[filters.window] + (": " + ", ".join(parts) if parts else "")).strip()


def current() -> Filters:
    """The filters of this view: from the URL, or the ones last used on another page when the URL has none."""
    own = {key: value for key, value in st.query_params.items() if key in (*FILTER_KEYS, WINDOW_KEY, PAUSED_KEY)}
    filters = from_query(own) if own else Filters(**st.session_state.get(_SESSION_KEY, {}))
    store(filters)
    return filters


def store(filters: Filters) -> None:
    """Put filters into the URL and the session, so a link or another page reproduces the view."""
    st.session_state[_SESSION_KEY] = asdict(filters)
    wanted = to_query(filters)
    for key in (*FILTER_KEYS, WINDOW_KEY, PAUSED_KEY):
        if key in wanted and st.query_params.get(key) != wanted[key]:
            st.query_params[key] = wanted[key]
        elif key not in wanted and key in st.query_params:
            del st.query_params[key]


def _choice(label: str, value: str, known: Iterable[str], help_text: str) -> str:
    options = ["", *sorted({*known, value} - {""})]
    picked = st.sidebar.selectbox(
        label,
        options,
        index=options.index(value),
        format_func=lambda option: option or "all",
        accept_new_options=True,
        help=help_text,
    )
    return (picked or "").strip()


def controls(known: Mapping[str, Iterable[str]] | None = None) -> Filters:
    """Draw the sidebar (live/pause, window, filters) and return the filters it now says."""
    filters = current()
    known = known or {}
    live = st.sidebar.toggle("Live (refresh every 3 s)", value=not filters.paused, help="Pause to read a view calmly.")
    window = st.sidebar.selectbox(
        "Time window",
        list(WINDOWS_S),
        index=list(WINDOWS_S).index(filters.window),
        format_func=WINDOW_LABELS.__getitem__,
    )
    chosen = {
        key: _choice(
            key.capitalize() if key != "group" else "Consumer group", getattr(filters, key), known.get(key, ()), hint
        )
        for key, hint in (
            ("channel", "Only events on this channel."),
            ("group", "Only deliveries to this consumer group."),
            ("type", "Only events of this CloudEvents type."),
            ("service", "Only spans of this service."),
        )
    }
    updated = Filters(window=window, paused=not live, **chosen)
    if updated.active() and st.sidebar.button("Clear filters", icon=":material/filter_alt_off:"):
        updated = Filters(window=updated.window, paused=updated.paused)
    if updated != filters:
        store(updated)
        st.rerun()
    return updated


def page_param(key: str, default: str = "") -> str:
    """A page's own URL parameter (a trace id, an event id, a chosen stream)."""
    return str(st.query_params.get(key, default) or default)


def set_page_param(key: str, value: str, default: str = "") -> None:
    """Write a page's own URL parameter, dropping it when it is back at its default."""
    if value and value != default:
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    elif key in st.query_params:
        del st.query_params[key]
