"""The dashboard's entry point: a router, nothing more.

Pages live in dashboard/views/, not pages/: Streamlit would serve a pages/ folder on its own for deep
links, bypassing this router.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

VIEWS = Path(__file__).parent / "views"
# The sidebar: section title -> (page file, title, icon, URL path).
SECTIONS = {
    "See the flow": [
        ("overview.py", "Overview", ":material/hub:", "overview"),
        ("latency.py", "Latency", ":material/timer:", "latency"),
        ("ordering.py", "Ordering and loss", ":material/format_list_numbered:", "ordering"),
        ("duplicates.py", "Duplicates", ":material/content_copy:", "duplicates"),
    ],
    "Follow one thing": [
        ("traces.py", "Traces", ":material/account_tree:", "traces"),
        ("event.py", "Event", ":material/mail:", "event"),
        ("dead_letters.py", "Dead letters", ":material/report:", "dead-letters"),
    ],
    "Under the hood": [
        ("broker.py", "Broker", ":material/dns:", "broker"),
        ("instrumentation.py", "Instrumentation health", ":material/health_and_safety:", "instrumentation"),
        ("contracts.py", "Contracts", ":material/handshake:", "contracts"),
    ],
    "Teach": [
        ("scenarios.py", "Scenarios", ":material/school:", "scenarios"),
        ("compare.py", "Compare", ":material/compare_arrows:", "compare"),
    ],
}

st.set_page_config(page_title="eventscope", page_icon=":material/hub:", layout="wide")
navigation = st.navigation(
    {
        section: [
            st.Page(VIEWS / file, title=title, icon=icon, url_path=url, default=file == "overview.py")
            for file, title, icon, url in pages
        ]
        for section, pages in SECTIONS.items()
    }
)
navigation.run()
