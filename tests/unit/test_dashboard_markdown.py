"""Data placed in Markdown shows its own characters: no image, link, tag, emphasis or block comes of it."""

from __future__ import annotations

import json
import re

import pytest

from dashboard.charts import plain
from dashboard.markdown import WORD_JOINER, text

HOSTILE = [
    "![x](http://host/p.png)",
    "[click](http://host)",
    "<img src=http://host/p.png>",
    "<a href='http://host'>x</a>",
    "**bold** _it_ `code` ~~s~~",
    "# heading\n- item\n> quote\n1. one",
    ":red[colour] $x^2$",
    "http://host/bare www.host.example me@host.example",
    "line one\r\nline two\u2028three",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_every_ascii_punctuation_is_escaped_and_lines_are_joined(value):
    escaped = text(value)
    assert "\n" not in escaped and "\r" not in escaped and "\u2028" not in escaped
    assert not re.search(r"(?<!\\)[!\[\]()<>*_`#~$:]", escaped), escaped


@pytest.mark.parametrize("value", HOSTILE)
def test_unescaped_it_reads_as_the_value(value):
    shown = re.sub(r"\\(.)", r"\1", text(value)).replace(WORD_JOINER, "")
    assert shown == re.sub(r"\s*[\r\n\u2028]+\s*", " ", value)


def test_bare_links_are_broken_by_an_invisible_joiner():
    shown = re.sub(r"\\(.)", r"\1", text("see http://host and www.host.example or me@host.example"))
    assert "://" not in shown and "www." not in shown and "e@h" not in shown


def test_plotly_labels_keep_no_tags():
    assert plain("<a href='x'>svc</a> & <b>") == "&lt;a href='x'&gt;svc&lt;/a&gt; &amp; &lt;b&gt;"


def test_names_on_chart_axes_and_legends_keep_no_tags():
    import pandas as pd

    from dashboard.views import broker_transforms, duplicates_transforms, latency_transforms

    tag = "<a href='http://host'>g</a>"
    figures = [
        duplicates_transforms.duplicates_by_group(
            pd.DataFrame({"vantage": [tag], "count": [1], "kind": ["processed twice (bug)"]})
        ),
        broker_transforms.subscribers_per_channel(pd.DataFrame({"channel": [tag], "subscribers": [1]})),
        latency_transforms.latency_over_time(
            pd.DataFrame({"time": [pd.Timestamp(0)], "key": [tag], "p95_ms": [1.0], "count": [1]}), "p95", "delivery"
        ),
    ]
    for figure in figures:
        assert "<a href" not in json.dumps(json.loads(figure.to_json()))  # plotly writes < as \u003c
