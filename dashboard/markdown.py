"""Data values inside Markdown: a channel, a service or an error message shown as exactly its characters.

Streamlit renders titles, captions, notices, button and link labels as Markdown. A value that came from
a link, a payload or a span (``![x](http://host/p.png)``, ``[click](http://host)``) must not become an
image the browser fetches or a link; wherever data sits inside such Markdown it goes through ``text``.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAKS = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")
WORD_JOINER = "\u2060"
"""Invisible, and breaks the patterns GitHub-flavoured Markdown turns into links after escapes are read."""
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)


def text(value: object) -> str:
    """``value`` as Markdown that renders as its own characters on one line.

    CommonMark lets a backslash escape any ASCII punctuation, which defuses every construct (images, links,
    emphasis, code, HTML, headings, lists, Streamlit's ``:color[...]`` and ``$math$``); line breaks become
    spaces so no block can start. Bare URLs, ``www.`` and e-mail addresses are linked from the text that is
    left once escapes are read, so a word joiner goes inside ``://``, ``www.`` and before ``@``.
    """
    flat = _AUTOLINK.sub(WORD_JOINER, _LINE_BREAKS.sub(" ", str(value)))
    return _PUNCTUATION.sub(r"\\\1", flat)
