"""Shared chart code: the font, the layout, the blank chart, and plain label text for Plotly.

Every page builds its own figures next to its view (views/<page>_transforms.py) from these. Plotly reads a few
HTML tags in labels (``<b>``, ``<br>``, ``<a href>``), so names from the data pass through ``plain`` first
and show as their own characters. Every axis names its unit; services and channels keep their colour from
colors.py on every chart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboard import colors

FONT = {"family": "Source Sans Pro, sans-serif", "size": 13}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def plain(value: object) -> str:
    """A data value as Plotly label text: ``&``, ``<`` and ``>`` as entities, so no tag or link is made of it."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_columns(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of ``frame`` with these name columns as Plotly label text (see ``plain``)."""
    return frame.assign(**{column: frame[column].map(plain) for column in columns if column in frame})


def label_colors(names: Iterable[str], palette: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each name's colour keyed by its label text (``plain``), for ``color_discrete_map`` over plained columns."""
    return {plain(name): colors.color_for(name, palette) for name in names}


def layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    """The house layout: title at the left, the shared font and margins, no legend title."""
    fig.update_layout(title={"text": title, "x": 0}, height=height, margin=_MARGIN, font=FONT, legend_title_text="")
    return fig


def empty_figure(message: str, height: int = 240) -> go.Figure:
    """A blank chart saying why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 15, "color": colors.NEUTRAL})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, "", height)
