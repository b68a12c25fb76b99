"""The view's state in the URL: time window, live or paused, and the channel/group/type/service filters.

Everything a view depends on lives in ``st.query_params`` so that a copied link reproduces it. The
pure half turns query parameters into a Filters value and back, and into API parameters; the
Streamlit half draws the sidebar controls and keeps the URL in step across pages.

A link can be crafted or mistyped, so every parameter a page reads is checked here: an invalid value
falls back to its default, the page says so in a notice, and the URL is corrected.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace

import streamlit as st

from dashboard import markdown

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
MAX_TEXT = 512
"""Longest accepted name or id, as the query API accepts (collectors/analyses/filters.py MAX_TEXT)."""
MAX_MS = 1e12
"""Largest accepted duration in milliseconds, as the query API accepts for min_ms."""
SHOWN_CHARS = 80
"""A rejected value is quoted in its notice up to this many characters."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


def is_text(value: str) -> bool:
    """A name or id: at most MAX_TEXT characters, no control characters."""
    return len(value) <= MAX_TEXT and not _CONTROL.search(value)


def is_milliseconds(value: str) -> bool:
    """A finite number of milliseconds from 0 to MAX_MS."""
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and 0 <= number <= MAX_MS


def is_trace_id(value: str) -> bool:
    """A W3C trace id: 32 hexadecimal digits."""
    return bool(_TRACE_ID.fullmatch(value))


@dataclass(frozen=True)
class Rule:
    """What a valid value of one URL parameter looks like, in code and in words for the notice."""

    valid: Callable[[str], bool]
    expected: str


TEXT = Rule(is_text, f"a name of at most {MAX_TEXT} characters without control characters")
PAGE_RULES: dict[str, Rule] = {
    "min_ms": Rule(is_milliseconds, f"a number of milliseconds from 0 to {MAX_MS:g}"),
    "error": Rule(lambda value: value in ("true", "false"), "true or false"),
    "trace": Rule(is_trace_id, "a trace id of 32 hexadecimal digits"),
    "event_id": TEXT,
    "subject": TEXT,
    "id": TEXT,
}
"""Pages' own parameters with a fixed format; parameters with choices are checked against the choices."""


def choice_rule(choices: Iterable[str]) -> Rule:
    """A parameter that must be one of ``choices``."""
    options = [str(option) for option in choices]
    shown = ", ".join(options[:12]) + (", …" if len(options) > 12 else "")
    return Rule(set(options).__contains__, f"one of {shown}" if options else "one of the choices offered")


def problem(key: str, raw: str, rule: Rule, fallback: str) -> str:
    """The notice for a rejected value: what was given, what is expected, what is shown instead."""
    given = raw if len(raw) <= SHOWN_CHARS else raw[:SHOWN_CHARS] + "…"
    instead = f"“{markdown.text(fallback)}”" if fallback else "no value"
    return (
        f"This link's `{key}` parameter, “{markdown.text(given)}”, is not valid: expected "
        f"{markdown.text(rule.expected)}. Showing {instead} instead."
    )


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


FILTER_RULES: dict[str, Rule] = {
    WINDOW_KEY: choice_rule(WINDOWS_S),
    PAUSED_KEY: Rule(lambda value: value in ("", "0", "1", "true", "false"), "1 or 0 (true or false)"),
    **{key: TEXT for key in FILTER_KEYS},
}


def checked_query(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The filter parameters that are valid, and a notice for each one that is not (left out)."""
    kept, problems = {}, []
    for key, rule in FILTER_RULES.items():
        if key not in params:
            continue
        raw = str(params[key])
        if rule.valid(raw):
            kept[key] = raw
        else:
            problems.append(problem(key, raw, rule, asdict(Filters())[key] if key != PAUSED_KEY else ""))
    return kept, problems


def from_query(params: Mapping[str, str]) -> Filters:
    """Filters from URL query parameters; invalid values fall back to the defaults (see checked_query)."""
    kept, _ = checked_query(params)
    return Filters(
        window=kept.get(WINDOW_KEY, DEFAULT_WINDOW),
        paused=kept.get(PAUSED_KEY, "") in ("1", "true"),
        **{key: kept.get(key, "").strip() for key in FILTER_KEYS},
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
    """One line of Markdown saying what the page is limited to, for captions (values escaped)."""
    parts = [f"{key} = {markdown.text(value)}" for key, value in filters.active().items()]
    return (WINDOW_LABELS[filters.window] + (": " + ", ".join(parts) if parts else "")).strip()


def current() -> Filters:
    """The filters of this view: from the URL, or the ones last used on another page when the URL has none."""
    own = {key: value for key, value in st.query_params.items() if key in (*FILTER_KEYS, WINDOW_KEY, PAUSED_KEY)}
    for notice in checked_query(own)[1]:
        st.warning(notice, icon=":material/link_off:")
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


def checked_param(
    key: str, raw: str | None, default: str = "", choices: Iterable[str] | None = None
) -> tuple[str, str]:
    """A page parameter's value and, when the given one is invalid, the notice (else ""). Absent or empty
    means the default; a parameter with ``choices`` must be one of them, others follow PAGE_RULES."""
    if raw is None or raw == "":
        return default, ""
    rule = choice_rule(choices) if choices is not None else PAGE_RULES.get(key, TEXT)
    if rule.valid(raw):
        return raw, ""
    return default, problem(key, raw, rule, default)


def page_param(key: str, default: str = "", choices: Iterable[str] | None = None) -> str:
    """A page's own URL parameter (a trace id, an event id, a chosen stream), checked: an invalid value is
    dropped from the URL and the page shows a notice saying the default is shown instead."""
    value, notice = checked_param(key, st.query_params.get(key), default, choices)
    if notice:
        st.warning(notice, icon=":material/link_off:")
        del st.query_params[key]
    return value


def set_page_param(key: str, value: str, default: str = "") -> None:
    """Write a page's own URL parameter, dropping it when it is back at its default."""
    if value and value != default:
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    elif key in st.query_params:
        del st.query_params[key]
