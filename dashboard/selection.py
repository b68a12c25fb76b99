"""Clicks on live charts and tables that act once.

A live page reruns every few seconds and Streamlit keeps a widget's selection across reruns, so a
selected row would otherwise re-apply itself (or, once rows shift, point at another row) forever.
"""

from __future__ import annotations

import streamlit as st

_PREFIX = "eventscope_selection_"


def fresh(key: str, value: object) -> bool:
    """True the first time ``value`` is seen for ``key`` (and remember it); empty selections only reset."""
    state_key = _PREFIX + key
    if not value:
        st.session_state.pop(state_key, None)
        return False
    if st.session_state.get(state_key) == value:
        return False
    st.session_state[state_key] = value
    return True


def rows(event) -> list[int]:
    """Selected row positions of a dataframe selection event."""
    return list((event or {}).get("selection", {}).get("rows", [])) if event else []


def points(event) -> list[dict]:
    """Selected points of a plotly selection event."""
    return list((event or {}).get("selection", {}).get("points", [])) if event else []


_LABELS_KEPT = 500


def option(key: str, labels: dict[str, str], picked: object) -> str | None:
    """The option behind a select box's answer on a live page.

    Streamlit answers with the label the browser showed when the options changed between the list being
    drawn and the click (a live page redraws every few seconds), so labels shown earlier are remembered
    (the latest ``_LABELS_KEPT``) and mapped back to their option; anything else is no option.
    """
    state_key = _PREFIX + key + "_labels"
    seen: dict[str, str] = st.session_state.setdefault(state_key, {})
    seen.update({label: value for value, label in labels.items()})
    while len(seen) > _LABELS_KEPT:
        seen.pop(next(iter(seen)))
    if not isinstance(picked, str) or not picked:
        return None
    return picked if picked in labels else seen.get(picked)
