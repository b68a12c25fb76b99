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
