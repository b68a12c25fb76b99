"""The dashboard's entry point: a router, nothing more. Pages live in dashboard/pages/."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="eventscope", layout="wide")
PAGES = Path(__file__).parent / "pages"
navigation = st.navigation([st.Page(PAGES / "overview.py", title="Overview", default=True)])
navigation.run()
