"""The calm messages a page shows instead of data: collectors unreachable, nothing known of an id, a refused
request, nothing collected yet.

Pages wrap each section in ``guard()`` so one failing query never becomes a traceback and never
hides the sections that did work. An unexpected error is logged with its traceback on the dashboard's
side; the page only says that the section failed. Names and messages are data, shown as text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from dashboard import markdown
from dashboard.client import ApiUnavailable, BadRequest, NotFound, ServerError, Unauthorized
from dashboard.filters import Filters

log = logging.getLogger("eventscope.dashboard")

REFRESH_S = 3
"""Live pages refresh this often; the sidebar toggle pauses them."""
NO_SPANS_HINT = (
    "No spans yet. Point your services' OpenTelemetry SDK at the collector: "
    "`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`, or start a scenario on the **Scenarios** page."
)
NO_EVENTS_HINT = (
    "No events or spans yet. Point your services at the collector: "
    "`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` for spans, and give the collectors "
    "`--redis-url` to tap your Redis Pub/Sub."
)
FILTERED_HINT = "Nothing matches the filters in this time window. Widen the window or clear filters in the sidebar."


def refresh_every(filters: Filters) -> int | None:
    """Seconds between live refreshes, or None when paused."""
    return None if filters.paused else REFRESH_S


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Run a page section; turn API failures into one calm message naming ``what`` could not be shown."""
    shown = markdown.text(what)
    opening = shown[:1].upper() + shown[1:]
    try:
        yield
    except NotFound as exc:
        st.warning(f"{opening}: {markdown.text(exc)}", icon=":material/search_off:")
    except BadRequest as exc:
        st.warning(f"The collectors refused this view of {shown}: {markdown.text(exc)}", icon=":material/block:")
    except ServerError as exc:
        st.error(
            f"The collectors failed to answer for {shown}; the rest of the page still works. {markdown.text(exc)}",
            icon=":material/error:",
        )
    except Unauthorized as exc:
        st.error(
            f"The collectors refused this dashboard, so {shown} cannot be shown: they require a token. "
            f"{markdown.text(exc)}",
            icon=":material/lock:",
        )
    except ApiUnavailable as exc:
        st.error(
            f"The collectors are unreachable, so {shown} cannot be shown. Start them with `./run demo` "
            f"(or set EVENTSCOPE_API). {markdown.text(exc)}",
            icon=":material/cloud_off:",
        )
    except Exception:
        log.exception("showing %s failed", what)
        st.error(
            f"Showing {shown} failed; the rest of the page still works. The dashboard's log says why.",
            icon=":material/error:",
        )


def empty(hint: str) -> None:
    """An empty state that says what to do."""
    st.info(hint, icon=":material/lightbulb:")
